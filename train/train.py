#!/usr/bin/env python
"""Train a fast style-transfer network on a folder of photos and publish it.

    accelerate launch train/train.py --style starry.jpg --data photos/ \\
        --output_dir outputs/starry --push_to_hub --hub_model_id user/starry

Several ``--style`` images train one multi-style network (conditional instance norm: each
training image gets one of the styles at random); ``--base <multi-style network> --style
new.jpg`` learns only the new style's norm parameters on the frozen base (an add-on).

Runs unchanged on CPU, one GPU, several GPUs (DDP) or nodes: see `accelerate config`.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train import common, styles  # noqa: E402
from fst import FastStyle, imageio  # noqa: E402
from fst.errors import ConfigError  # noqa: E402
from fst.inference import from_uint8_array  # noqa: E402
from fst.losses import DEFAULT_STYLE_LAYERS, LossWeights, PerceptualLoss  # noqa: E402
from fst.temporal import shifted_copy, stability_loss  # noqa: E402
from fst.transformer import ARCHITECTURES  # noqa: E402
from fst.vgg import LAYER_NAMES, describe, load_vgg16, weights_path  # noqa: E402

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=common.HelpFormatter)
    g = parser.add_argument_group("style")
    styles.add_style_args(g)
    g.add_argument("--style_name", default=None,
                   help="display name of the style, or of a multi-style network (default: from the file names)")
    g.add_argument("--style_title", nargs="+", action=styles.OneOrMany, default=None,
                   help="the style image's work, for the card's provenance line, e.g. 'The Starry Night (1889)' "
                        "(one per --style image)")
    g.add_argument("--style_artist", nargs="+", action=styles.OneOrMany, default=None,
                   help="its artist, e.g. 'Vincent van Gogh (1853-1890)'")
    g.add_argument("--style_license", nargs="+", action=styles.OneOrMany, default=None,
                   help="its copyright status or licence, e.g. 'public domain (the artist died over 100 years ago)'")
    g.add_argument("--style_source", nargs="+", action=styles.OneOrMany, default=None,
                   help="where the image file comes from (a URL or a citation)")
    g.add_argument("--style_size", type=int, default=512, help="longer side of the style image for Gram targets")
    g.add_argument("--arch", choices=sorted(ARCHITECTURES), default="johnson", help="network variant")
    g.add_argument("--init_from", default=None,
                   help="start from this trained network (a folder or Hub repo id of the same --arch) "
                        "instead of random weights: fine-tuning, or a longer schedule for a shipped style")
    g.add_argument("--content_weight", type=float, default=LossWeights.content_weight, help="content loss weight")
    g.add_argument("--style_weight", type=float, default=LossWeights.style_weight, help="style loss weight")
    g.add_argument("--tv_weight", type=float, default=LossWeights.tv_weight, help="total variation weight")
    g.add_argument("--stability_weight", type=float, default=0.0,
                   help="weight of the stability loss (fst.temporal.stability_loss): outputs for a photo and for "
                        "it moved a few pixels, with noise, must agree; steadier video. 0 = off")
    g.add_argument("--content_layer", choices=sorted(LAYER_NAMES), default=LossWeights.content_layer,
                   help="VGG16 layer of the content loss")
    g.add_argument("--style_layers", nargs="+", choices=sorted(LAYER_NAMES), default=list(DEFAULT_STYLE_LAYERS),
                   help="VGG16 layers of the style loss")
    g.add_argument("--style_layer_weights", nargs="+", type=float, default=None,
                   help="one weight per style layer (default: all 1); deeper layers carry the larger "
                        "structures of a painting, which networks learn last")
    g.add_argument("--vgg_weights", type=Path, default=None,
                   help="prepared VGG16 safetensors (default: the cache; see `fst prepare-vgg`)")
    g.add_argument("--license", default="mit", help="license of the published model card")
    common.add_common_args(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_script(build_parser(), train, argv)


def train(args: argparse.Namespace) -> int:
    names = styles.normalize_style_args(args)   # empty: a single-style network
    accelerator = common.make_accelerator(args, "fst-style")
    paths = common.discover_images(args.data)
    sources = args.style if names and len(names) > 1 else [args.style]
    style_images = [common.load_style_image(source, args.style_size) for source in sources]
    style_name = args.style_name or ", ".join(Path(str(source)).stem.replace("_", " ").title() for source in sources)
    device = accelerator.device

    vgg = load_vgg16(args.vgg_weights, device=device)
    loss_network = describe(args.vgg_weights or weights_path()).get("source", "unknown")
    weights = LossWeights(args.content_weight, args.style_weight, args.tv_weight, args.content_layer,
                          tuple(args.style_layers), args.style_layer_weights)
    try:
        weights.layer_weights()
    except ValueError as exc:
        raise ConfigError(f"--style_layer_weights: {exc} ({len(args.style_layers)} layers)") from None
    if not args.stability_weight >= 0:
        raise ConfigError(f"--stability_weight must be >= 0, got {args.stability_weight}")
    style_tensors = [from_uint8_array(np.asarray(image)).to(device) for image in style_images]
    criterion = PerceptualLoss(vgg, style_tensors if names else style_tensors[0], weights).to(device)

    hyper = common.public_options(args)
    model = styles.build_model(args, names, style_name=style_name, loss_network=loss_network, training=hyper)
    if args.compile:
        model.net = torch.compile(model.net)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    dataset = styles.StyledImageFolder(paths, args.image_size, len(names), seed=args.seed) if names else \
        common.ImageFolder(paths, args.image_size, seed=args.seed)
    validation = common.validation_images(args.validation_images, None) or \
        [dataset[i]["image"][None] for i in range(min(4, len(dataset)))]

    # Several processes: the content term is relative to the whole global batch (as with one process).
    sum_over_processes = (lambda t: accelerator.reduce(t, "sum")) if accelerator.num_processes > 1 else None

    def compute_loss(batch, prepared_model):
        content, chosen = batch["image"], batch.get("style")
        if args.stability_weight > 0:   # one forward pass over the photos and their moved copies
            moved, shift = shifted_copy(content)
            both = None if chosen is None else torch.cat((chosen, chosen))
            output, moved_output = prepared_model(torch.cat((content, moved)), style=both).chunk(2)
        else:
            output = prepared_model(content, style=chosen)
        terms = criterion(output, content, chosen, sum_over_processes=sum_over_processes)
        logs = {"loss": terms.total, "content": terms.content, "style": terms.style, "tv": terms.tv}
        if args.stability_weight > 0:
            logs["stability"] = args.stability_weight * stability_loss(output, moved_output, shift)
            logs["loss"] = terms.total + logs["stability"]
        return logs["loss"], logs

    def sample_grid(step: int) -> Path:
        net = accelerator.unwrap_model(model)
        net.eval()
        rows = [[net.stylize(img, style=name) for img in validation] for name in names or [None]]
        net.train()
        return common.save_grid([validation, *rows], args.output_dir / "samples" / f"step-{step:06d}.png")

    state = common.train_loop(args, accelerator, model, optimizer, dataset, compute_loss, sample_grid)
    if accelerator.is_main_process:
        finish(args, accelerator.unwrap_model(model), state, style_images, style_name, loss_network,
               len(paths), sample_grid, weights)
    accelerator.end_training()
    return 0


def style_provenance(args: argparse.Namespace, index: int | None = None) -> str:
    """The card's line on a style image (the ``index``-th of several): work and artist,
    copyright status, source."""
    def value(name: str):
        given = getattr(args, name)   # a list for several styles, a plain value for one
        return given[index] if isinstance(given, list) and index is not None else given

    style = value("style")
    work = ", ".join(part for part in (value("style_title"), value("style_artist")) if part)
    source = value("style_source") or (style if re.match(r"^https?://", str(style)) else None)
    return "; ".join([
        work or f"`{common.public_name(style)}` (title and artist not given)",
        value("style_license") or "copyright status not given",
        f"source: {source}" if source else "source not given",
    ])


def finish(args, model: FastStyle, state, style_images, style_name: str, loss_network: str,
           num_images: int, sample_grid, weights: LossWeights) -> None:
    """Write the Hub-ready folder (weights, config, card, style images, samples); push it."""
    model.eval()
    if hasattr(model.net, "_orig_mod"):
        model.net = model.net._orig_mod
    folder = args.output_dir
    grid = sample_grid(state.step)
    imageio.save_image(imageio.read_image(grid), folder / "samples.jpg", quality=85)
    names = model.style_names
    if names:   # each painting under styles/, and a labelled strip of them as the thumbnail
        (folder / "styles").mkdir(exist_ok=True)
        for name, image in zip(names, style_images):
            image.save(folder / "styles" / f"{name}.jpg", quality=92)
        styles.style_strip(style_images, names).save(folder / "style.jpg", quality=92)
    else:
        style_images[0].save(folder / "style.jpg", quality=92)
    sources = ", ".join(f"`{d}`" for d in common.data_names(args.data))
    several = len(names) > 1
    card = dict(
        license=args.license, title=f"{style_name}: fast style transfer", style_name=style_name,
        style_image="style.jpg", sample_image="samples.jpg",
        repo_id=args.hub_model_id or common.placeholder_repo_id(folder),
        arch=model.config.arch or "custom", num_parameters=sum(t.numel() for t in model.tensors_to_save().values()),
        data_description=f"{num_images} photos from {sources}", data_terms=common.data_terms(args.data),
        datasets=common.datasets_of(args.data), loss_network=loss_network,
        style_provenance=None if several else style_provenance(args),
        styles=[{"name": name, "image": f"styles/{name}.jpg",
                 "provenance": style_provenance(args, i if several else None)} for i, name in enumerate(names)],
        base=model.config.base, base_revision=model.config.base_revision,
        hyperparameters={"batch_size": args.batch_size, "image_size": args.image_size, "lr": args.lr,
                         "content_weight": weights.content_weight, "style_weight": weights.style_weight,
                         "tv_weight": weights.tv_weight, "content_layer": weights.content_layer,
                         "style_layers": list(weights.style_layers), "style_size": args.style_size,
                         "style_layer_weights": weights.layer_weights(),
                         "seed": args.seed, "mixed_precision": str(args.mixed_precision or "no")},
        steps=state.step, train_seconds=state.elapsed_seconds, hardware=common.hardware_name(),
        final_losses=state.last_losses, quality=None, speed=common.speed_line(model.stylize, "eager fp32"),
        num_images=num_images,
        started_from=styles.started_from(args.init_from),
    )
    common.save_and_publish(args, model, card, template="multistyle" if names else "style")


if __name__ == "__main__":
    sys.exit(main())
