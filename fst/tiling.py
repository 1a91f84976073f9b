"""Tiled inference: stylize images of any size in bounded memory, without seams.

Instance norm makes a naive tiling inconsistent (each tile would be normalised
with its own statistics). We first record the normalisation statistics on the
whole image (downscaled when large), then run overlapping tiles that all use
those statistics. Tile windows carry a margin wider than the network's receptive
field and are aligned to its stride, so interiors match the untiled result; the
overlap bands are cross-faded to hide any residual difference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .inference import Finisher
from .transformer import norm_stats

STATS_MAX_SIDE = 1024   # statistics are computed on the image downscaled to this size
AUTO_TILE_PIXELS = 2048 * 2048    # larger inputs are tiled automatically (bounded memory)
DEFAULT_TILE = 768


def auto_tile(x: torch.Tensor, tile: int | None) -> int | None:
    """``tile``, or DEFAULT_TILE when none was asked for and x is above AUTO_TILE_PIXELS."""
    if tile is None and x.shape[-2] * x.shape[-1] > AUTO_TILE_PIXELS:
        return DEFAULT_TILE
    return tile

ALIGN = 4               # default total stride (TransformerNet.total_stride)


def record_stats(net: nn.Module, x: torch.Tensor, run) -> dict:
    """Instance-norm statistics of ``net`` on ``x`` (downscaled if large)."""
    height, width = x.shape[-2:]
    scale = min(1.0, STATS_MAX_SIDE / max(height, width))
    small = x if scale == 1.0 else F.interpolate(
        x, size=(max(8, round(height * scale)), max(8, round(width * scale))),
        mode="bilinear", antialias=True, align_corners=False)
    store: dict = {}
    with norm_stats("record", store):
        run(small)
    return store


def tiled_apply(
    net: nn.Module,
    x: torch.Tensor,
    run,
    finish: Finisher,
    tile: int,
    margin: int = 64,
    blend: int = 16,
) -> torch.Tensor:
    """Apply ``finish(content, run(content))`` tile by tile to x (1x3xHxW on CPU)."""
    align = getattr(net, "total_stride", ALIGN)
    # The margin must cover the receptive field for interiors to match the untiled result.
    margin = max(margin, getattr(net, "receptive_radius", 0))
    stats = record_stats(net, x, run)
    with norm_stats("frozen", stats):
        return apply_in_tiles(x, run, finish, tile, align=align, margin=margin, blend=blend)


def apply_in_tiles(x: torch.Tensor, run, finish: Finisher, tile: int, *, align: int, margin: int,
                   blend: int = 16) -> torch.Tensor:
    """``finish(window, run(window))`` over overlapping windows of x (1x3xHxW on CPU), pasted
    together with cross-faded seams. ``run`` must treat every window alike (any statistics
    it uses are fixed beforehand); for tiles to match the untiled result, ``margin`` should
    cover its receptive field plus the ``blend`` band; windows are aligned to ``align`` (its
    total stride)."""
    height, width = x.shape[-2:]
    tile = max(align * 8, tile - tile % align)
    margin = max(margin, blend)   # the cross-fade band lies inside the window's margin
    margin += (-margin) % align
    out = torch.zeros_like(x)  # zeros, not empty: blending multiplies the old content
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            win_top, win_left = max(0, top - margin), max(0, left - margin)
            win_bottom, win_right = min(height, bottom + margin), min(width, right + margin)
            window = x[..., win_top:win_bottom, win_left:win_right]
            result = finish(window, run(window)).to(out.dtype).cpu()
            # Paste the core, extended by `blend` px up/left into the previous tiles' area.
            ext_top, ext_left = max(0, top - blend), max(0, left - blend)
            patch = result[..., ext_top - win_top:bottom - win_top, ext_left - win_left:right - win_left]
            region = out[..., ext_top:bottom, ext_left:right]
            weight = _ramp(top - ext_top, bottom - ext_top, left - ext_left, right - ext_left, patch)
            if top - ext_top or left - ext_left:
                region.mul_(1 - weight).add_(patch * weight)
            else:
                region.copy_(patch)
    return out


def _ramp(band_h: int, height: int, band_w: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Weights rising 0 -> 1 across the top/left blend bands, 1 elsewhere."""
    wy = torch.ones(height, dtype=like.dtype)
    wx = torch.ones(width, dtype=like.dtype)
    if band_h:
        wy[:band_h] = torch.linspace(0, 1, band_h + 2, dtype=like.dtype)[1:-1]
    if band_w:
        wx[:band_w] = torch.linspace(0, 1, band_w + 2, dtype=like.dtype)[1:-1]
    return torch.minimum(wy[:, None], wx[None, :]).expand_as(like[0, 0])
