"""A chosen style, or a mix of two styles, whatever networks hold them.

* :class:`BoundStyle`: a multi-style network with one style (or blend) chosen, used like a
  single-style network: ``stylize`` and calls use that style unless they name another.
  Everything else (``config``, ``device``, ...) is the network's.
* :func:`stylize_mix`: an image stylized by a mix of two styles. Two styles of one multi-style
  network are mixed in its norm parameters (one pass); styles of different networks are
  stylized one after the other and the two results mixed pixel by pixel.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from .inference import check_unit_interval
from .multistyle import StyleChoice


class BoundStyle:
    """``model`` (a multi-style :class:`~fst.FastStyle`) with ``style`` chosen (checked at once)."""

    def __init__(self, model: Any, style: StyleChoice):
        model.style_weights(style)   # a bad style is a StyleError here, not at the first call
        self.model = model
        self.style = style

    def stylize(self, image: Any, **options: Any) -> Any:
        """``model.stylize`` with this style unless ``options`` name another."""
        options.setdefault("style", self.style)
        return self.model.stylize(image, **options)

    __call__ = stylize

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"BoundStyle({self.model.config.style_name or 'network'!r}, style={self.style!r})"


def unbind(model: Any) -> tuple[Any, StyleChoice]:
    """(the network, the style chosen on it: None for its default)."""
    return (model.model, model.style) if isinstance(model, BoundStyle) else (model, None)


def stylize_mix(first: Any, second: Any | None, mix: float, image: Any, **options: Any) -> Any:
    """``image`` stylized by ``first`` and ``second`` (FastStyle or BoundStyle) mixed
    ``1 - mix : mix``; ``options`` go to ``stylize`` (strength, tile, ...). Returns what
    ``stylize`` returns for ``image`` (PIL, array or tensor)."""
    mix = check_unit_interval("mix", mix)
    if second is None or mix == 0.0:
        return first.stylize(image, **options)
    if mix == 1.0:
        return second.stylize(image, **options)
    (network, style), (other, other_style) = unbind(first), unbind(second)
    if network is other and network.style_names:
        weights = (1 - mix) * network.style_weights(style) + mix * network.style_weights(other_style)
        blend = {name: float(w) for name, w in zip(network.style_names, weights) if float(w) > 0}
        return network.stylize(image, style=blend, **options)
    return mix_results(first.stylize(image, **options), second.stylize(image, **options), mix)


def mix_results(a: Any, b: Any, mix: float) -> Any:
    """``(1 - mix) * a + mix * b`` for two results of the same kind, dtype and size."""
    if isinstance(a, Image.Image):
        return Image.fromarray(mix_results(np.asarray(a), np.asarray(b), mix))
    if isinstance(a, np.ndarray):
        mixed = (1 - mix) * a.astype(np.float32) + mix * b.astype(np.float32)
        return np.clip(np.rint(mixed), 0, np.iinfo(a.dtype).max).astype(a.dtype) if a.dtype.kind in "ui" \
            else mixed.astype(a.dtype)
    mixed = torch.lerp(a.float(), b.float(), mix)
    if a.is_floating_point():
        return mixed.to(a.dtype)
    return mixed.round_().clamp_(0, torch.iinfo(a.dtype).max).to(a.dtype)


__all__ = ["BoundStyle", "mix_results", "stylize_mix", "unbind"]
