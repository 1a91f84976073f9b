"""Add-on styles: a few KB of norm parameters on top of a multi-style base network.

A multi-style network's styles differ only in the (gamma, beta) rows of its instance
norms (:mod:`fst.multistyle`). A new style can therefore be learned by training only
those rows with everything else frozen (``train/train.py --base``), and published alone:
``config.json`` names the ``base`` (a Hub repo id pinned at ``base_revision``, or a
folder for local use) and ``model.safetensors`` holds just the norm rows.

Loading an add-on loads its base through the same safe, strict path as any model
(``FastStyle.from_pretrained``: validated config, checked tensors, Hub cache and offline
fallbacks), then checks that the base has the add-on's structure. A base that is itself
an add-on is refused (no chains), and an add-on downloaded from the Hub may only name a
Hub repo id as its base, never a folder of the machine loading it.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch

from .errors import ConfigError, ModelLoadError

_LOADING_BASE: contextvars.ContextVar[str | None] = contextvars.ContextVar("fst_loading_base", default=None)
COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclasses.dataclass(frozen=True)
class BaseRef:
    """Where an add-on's base network comes from: ``base`` as config.json stores it, ``revision``
    the pinned commit (Hub repos), ``folder`` True for a local folder (not publishable)."""

    base: str
    revision: str | None = None
    folder: bool = False

    def publishable_problem(self) -> str | None:
        """Why an add-on with this base cannot be published, or None when it can."""
        if self.folder:
            return (f"its base is the local folder {self.base}; publish the base to the Hub first and train the "
                    "add-on with --base user/name, so that config.json names a repo id at a pinned revision")
        if self.revision is None:
            return (f"its base {self.base!r} has no pinned revision; train the add-on with --base naming a Hub "
                    "repo (its commit is recorded)")
        return None


def resolve_base(source: str) -> BaseRef:
    """The reference to record for ``--base source``: a folder (absolute path), an embedded
    default's name, or a Hub repo id pinned at the commit the Hub serves now (or, when the Hub
    cannot be reached, at the commit of the copy in the local Hub cache)."""
    from . import catalog
    from .errors import HubError
    from .hub import cached_download, download_with_deadline, names_a_folder

    local = Path(source).expanduser()
    if local.is_dir() or names_a_folder(source):
        return BaseRef(str(local.resolve()), None, folder=True)
    entry = catalog.find_entry(source)
    if entry is not None and source in (entry.name, entry.folder):
        return BaseRef(source)
    try:
        config_path = download_with_deadline(source)[0]
    except HubError:
        cached = cached_download(source)
        if cached is None:
            raise
        config_path = cached[0]
    revision = config_path.parent.name
    return BaseRef(source, revision if COMMIT.match(revision) else None)


def create(model_class: Any, base: str, names: Sequence[str], **metadata: Any) -> Any:
    """A new add-on of ``model_class`` (:class:`fst.FastStyle`) on ``base`` (a folder, an embedded
    default's name or a Hub repo id, loaded safely with ``model_class.from_pretrained`` and pinned at
    its current commit) with one norm row per style of ``names``.

    The rows start from the mean of the base's rows; they are the only parameters that take
    gradients (everything else is the base's, frozen). ``metadata``: further config fields
    (style_name, loss_network, training).
    """
    from .transformer import TransformerConfig, norm_parameter_names

    reference = resolve_base(base)
    network = model_class.from_pretrained(base, revision=reference.revision, device="cpu")
    if network.config.base:
        raise ConfigError(f"{base} is itself an add-on; give the multi-style network it was trained on "
                          f"({network.config.base})")
    config = TransformerConfig(arch=network.config.arch, **network.config.structure, style_names=list(names),
                               base=reference.base, base_revision=reference.revision, **metadata)
    model = model_class(config)
    copy_weights(model, network.state_dict())
    norms = set(norm_parameter_names(model.net))
    for name, parameter in model.net.named_parameters():
        parameter.requires_grad_(name in norms)
    return model


def copy_weights(model: Any, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy ``tensors`` (of a network with the same structure) into ``model``. Where the style
    counts differ, each style's norm rows start from the source's single row, or the mean of its rows."""
    from .transformer import norm_parameter_names

    norms = set(norm_parameter_names(model.net))
    loaded = {}
    for name, ours in model.state_dict().items():
        theirs = tensors[name].float()
        if theirs.shape != ours.shape and name in norms:
            rows = theirs if theirs.dim() == 1 else theirs.mean(0)
            theirs = rows.expand_as(ours) if ours.dim() == 2 else rows
        loaded[name] = theirs.clone()
    model.load_state_dict(loaded, strict=True)


def base_tensors(model_class: Any, config: Any, folder: Path, options: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors an add-on (``config.base`` set) takes from its base: every tensor but the
    instance norms'. The base is loaded by ``model_class.from_pretrained`` with the Hub ``options``
    (cache_dir, token, local_files_only) of the add-on's load. Raises ModelLoadError for a base
    that is missing, unsafe or a different network."""
    from .hub import names_a_folder
    from .transformer import norm_parameter_names

    base, revision = config.base, config.base_revision
    if _LOADING_BASE.get() is not None:
        raise ModelLoadError(f"the base {_LOADING_BASE.get()!r} is itself an add-on (its config.json names the base "
                             f"{base!r}); a base must be a complete network")
    from_hub = _in_hub_cache(folder)
    if names_a_folder(base) or Path(base).is_absolute():
        if from_hub:
            raise ModelLoadError(f"this add-on, downloaded from the Hub, names the local folder {base!r} as its base; "
                                 "only Hub repo ids are accepted as bases of downloaded add-ons")
        source = str((folder / Path(base).expanduser()).resolve())
    else:
        source = base
    with _loading_base(base):
        try:
            network = model_class.from_pretrained(source, revision=revision, device="cpu", **options)
        except ModelLoadError as exc:
            raise type(exc)(f"cannot load the base network {base!r} of this add-on: {exc}") from None
    _check_structure(config, network.config, base)
    norms = set(norm_parameter_names(network.net))
    return {name: tensor for name, tensor in network.state_dict().items() if name not in norms}


def _check_structure(config: Any, base_config: Any, base: str) -> None:
    """Refuse a base whose convolutions do not fit the add-on's norms (a different network)."""
    ours, theirs = config.structure, base_config.structure
    different = [f"{name} {theirs[name]} (the add-on has {ours[name]})" for name in ours if ours[name] != theirs[name]]
    if different:
        raise ModelLoadError(f"the base {base!r} is a different network: {', '.join(different)}; train the add-on "
                             "on this base again, or load it with the base it was trained on")


@contextlib.contextmanager
def _loading_base(name: str) -> Iterator[None]:
    token = _LOADING_BASE.set(name)
    try:
        yield
    finally:
        _LOADING_BASE.reset(token)


def _in_hub_cache(folder: Path) -> bool:
    """Whether ``folder`` lies in a Hugging Face cache repo folder (``models--user--name/...``)."""
    parts = Path(folder).resolve().parts
    return any(part.startswith("models--") for part in parts) and ("snapshots" in parts or "blobs" in parts)


__all__ = ["BaseRef", "base_tensors", "copy_weights", "create", "resolve_base"]
