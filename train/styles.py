"""The multi-style parts of style training (train.py): several paintings in one network,
and add-on styles trained on a frozen base network (only the instance norms' rows learn).

* :class:`StyledImageFolder` draws one style per training image, deterministically per
  (seed, epoch, index), so a resumed run sees exactly the styles an uninterrupted one would.
* :func:`build_model` makes the network a run trains: single-style, multi-style (optionally
  warm-started from a trained network of the same structure), or an add-on on ``--base``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from fst import FastStyle, addon, config_for_arch, imageio
from fst.errors import ConfigError
from fst.multistyle import check_style_names, style_name_from_path

from . import common

#: Options that take one value per style image when several are given.
PER_STYLE_OPTIONS = ("style", "style_title", "style_artist", "style_license", "style_source")


class OneOrMany(argparse.Action):
    """``nargs="+"`` that stores one value as itself and several as a list: a single-style run's
    options keep the plain values they always had (in config.json too)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values[0] if len(values) == 1 else list(values))


def add_style_args(group: argparse._ArgumentGroup) -> None:
    """The options that choose what a run learns: one style, several, or an add-on on a base."""
    group.add_argument("--style", required=True, nargs="+", action=OneOrMany,
                       help="style image(s): paths or http(s) URLs; several train one multi-style network")
    group.add_argument("--style_names", nargs="+", default=None,
                       help="the styles' names in a multi-style network or add-on (default: the files' names), "
                            "e.g. starry_night the_scream")
    group.add_argument("--base", default=None,
                       help="learn only the new style(s)' norm parameters on this trained multi-style network "
                            "(a folder, an embedded default's name, or a Hub repo id, pinned at its current "
                            "commit); the rest stays frozen and the output holds just the new rows (a few KB). "
                            "The architecture is the base's")


def normalize_style_args(args: argparse.Namespace) -> list[str]:
    """Check the per-style options and return the style names (empty for a single-style run).

    With one ``--style`` (and no ``--base``) the options hold plain values, exactly as a
    single-style run always stored them; with several, lists of one value per style.
    """
    count = len(_as_list(args.style))
    for name in PER_STYLE_OPTIONS:
        values = getattr(args, name)
        if values is None:
            continue
        values = _as_list(values)
        if len(values) != count:
            raise ConfigError(f"--{name}: give one value per --style image ({count}), got {len(values)}")
        setattr(args, name, values[0] if count == 1 else values)
    if count == 1 and args.base is None:
        if args.style_names:
            raise ConfigError("--style_names names the styles of a multi-style network; give several --style "
                              "images, or --base, or leave it out")
        return []
    names = args.style_names or [style_name_from_path(str(path)) for path in _as_list(args.style)]
    if len(names) != count:
        raise ConfigError(f"--style_names: give one name per --style image ({count}), got {len(names)}")
    return check_style_names(list(names))


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class StyledImageFolder(common.ImageFolder):
    """:class:`train.common.ImageFolder` samples, each with a style index drawn at random."""

    def __init__(self, paths, size: int, num_styles: int, seed: int = 0):
        super().__init__(paths, size, seed=seed)
        self.num_styles = num_styles

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        sample["style"] = int(np.random.default_rng([self.seed, self.epoch, index, 1]).integers(self.num_styles))
        return sample


def build_model(args: argparse.Namespace, names: Sequence[str], **metadata: Any) -> FastStyle:
    """The network to train: ``--arch`` (single- or multi-style), warm-started from ``--init_from``,
    or an add-on on ``--base`` with everything but its norms frozen. ``metadata``: style_name,
    loss_network, training."""
    if args.base is not None:
        if args.init_from:
            raise ConfigError("--init_from and --base exclude each other: an add-on starts from its base")
        return addon.create(FastStyle, args.base, names, **metadata)
    model = FastStyle(config_for_arch(args.arch, style_names=list(names) or None, **metadata))
    if args.init_from:
        start = FastStyle.from_pretrained(args.init_from, device="cpu")
        different = [k for k, v in model.config.structure.items() if start.config.structure[k] != v]
        if different:
            raise ConfigError(f"--init_from {args.init_from} is a different network ({', '.join(different)} differ "
                              f"from --arch {model.config.arch}); pass the --arch it was trained with")
        addon.copy_weights(model, start.state_dict())
    return model


def started_from(source: str | None) -> str | None:
    """The model card's line for ``--init_from``: the starting network, without local paths."""
    if not source:
        return None
    training = FastStyle.from_pretrained(source, device="cpu").config.training or {}
    steps, size = training.get("max_steps"), training.get("image_size")
    name = Path(str(source)).name if Path(str(source)).expanduser().exists() else str(source)
    return f"`{name}`" + (f", a network trained for {steps} steps at {size}px" if steps and size else "")


def style_strip(images: Sequence[Image.Image], names: Sequence[str], height: int = 160) -> Image.Image:
    """The style images side by side at one height, each labelled with its name (``style.jpg``
    of a multi-style network: its thumbnail on the Hub)."""
    scaled = [imageio.scale_image(image, height / image.height) for image in images]
    label = 18
    strip = Image.new("RGB", (sum(image.width for image in scaled), height + label), "white")
    draw = ImageDraw.Draw(strip)
    left = 0
    for image, name in zip(scaled, names):
        strip.paste(image, (left, 0))
        draw.text((left + 4, height + 3), name, fill="black")
        left += image.width
    return strip
