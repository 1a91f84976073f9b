"""The switches of the CPU fast path, shared by the style network and its fused forward.

Two per-thread settings change how a :class:`fst.transformer.TransformerNet` computes,
without changing what it computes:

* :func:`fast_inference` selects exact rewrites (:class:`FastPath`): sub-pixel upsampling,
  NNPACK's Winograd convolutions (:mod:`fst.winograd`), in-place ReLU and residual sums, and
  the fused forward of :mod:`fst.fused`;
* :func:`norm_stats` makes instance norms record their statistics on a whole image, or reuse
  recorded ones, so that tiles agree with each other (:mod:`fst.tiling`).

:func:`conv` and :func:`relu` are the layers' operations under those switches. This module is
what :mod:`fst.transformer` and :mod:`fst.fused` both build on; neither imports the other's
internals.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd


@dataclasses.dataclass(frozen=True)
class FastPath:
    """Inference-only rewrites of the same computation (see :func:`fast_inference`).

    ``subpixel_upsampling``: nearest x2 upsampling + reflection pad + 3x3 conv equals
    four 2x2 convolutions at the low resolution on a replicate-padded input (one per
    output phase, with summed kernel taps): 2.25x fewer MACs and no upsampled copy.
    ``winograd``: stride-1 convolutions on CPU use NNPACK's Winograd/FFT kernels
    (fp32; differences from the direct convolution are ~1e-5 relative).
    ``inplace``: ReLU and the residual sum reuse their input buffers.
    ``fused_norm``: on CPU (fp32), instance norm, ReLU and the next layer's padding run
    in place in a few passes (``fst.fused``; needs ``subpixel_upsampling``).
    """

    subpixel_upsampling: bool = True
    winograd: bool = True
    inplace: bool = True
    fused_norm: bool = True


#: What training uses on CPU: the differentiable rewrites only.
TRAINING_PATH = FastPath(inplace=False, fused_norm=False)

_FAST_PATH: contextvars.ContextVar[FastPath | None] = contextvars.ContextVar("fst_fast_path", default=None)

# Per-thread switch used by tiled inference: record instance-norm statistics on a
# whole (downscaled) image, then normalise every tile with those same statistics,
# so tiles agree with each other and with the untiled result.
_NORM_STATS: contextvars.ContextVar[tuple[str, dict] | None] = contextvars.ContextVar("fst_norm_stats", default=None)


@contextlib.contextmanager
def fast_inference(options: FastPath | None = FastPath()) -> Iterator[None]:
    """Within this block (this thread only), TransformerNets use ``options``.

    Outputs equal the plain forward within float rounding (tests/test_optimizations.py);
    ``None`` selects the plain forward. With autograd on, only the differentiable
    rewrites apply (sub-pixel upsampling, NNPACK convolutions with their backward):
    see ``TRAINING_PATH``.
    """
    token = _FAST_PATH.set(options)
    try:
        yield
    finally:
        _FAST_PATH.reset(token)


def active_path() -> FastPath | None:
    """The rewrites in effect in this thread (set by :func:`fast_inference`); None for the plain forward."""
    return _FAST_PATH.get()


@contextlib.contextmanager
def norm_stats(mode: str, store: dict) -> Iterator[dict]:
    """Within this block (this thread only), instance norms ``record`` or reuse (``frozen``) stats."""
    if mode not in ("record", "frozen"):
        raise ValueError(f"mode must be 'record' or 'frozen', got {mode!r}")
    token = _NORM_STATS.set((mode, store))
    try:
        yield store
    finally:
        _NORM_STATS.reset(token)


def active_norm_stats() -> tuple[str, dict] | None:
    """``(mode, store)`` of the enclosing :func:`norm_stats` block in this thread, else None.

    ``store`` maps ``id(norm)`` to that norm's ``(mean, var)``; ``record`` fills it, ``frozen`` reads it.
    """
    return _NORM_STATS.get()


def conv(layer: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor | None = None,
         bias: torch.Tensor | None = None) -> torch.Tensor:
    """``layer`` (unpadded) on x, with ``weight``/``bias`` in place of its own when given; through
    NNPACK when the fast path asks for it and it applies, else ``F.conv2d``."""
    weight = layer.weight if weight is None else weight
    bias = layer.bias if bias is None else bias
    fast = _FAST_PATH.get()
    if (fast is not None and fast.winograd and layer.padding == (0, 0)
            and winograd.applies(x, weight, layer.stride, layer.dilation, layer.groups)):
        return winograd.conv2d(x, weight, bias)
    return F.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)


def relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU, in place when the fast path allows it (``FastPath.inplace``)."""
    fast = _FAST_PATH.get()
    return torch.relu_(x) if fast is not None and fast.inplace else torch.relu(x)


__all__ = ["FastPath", "TRAINING_PATH", "active_norm_stats", "active_path", "conv", "fast_inference", "norm_stats",
           "relu"]
