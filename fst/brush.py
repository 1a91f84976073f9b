"""Brush size: run a style network on a downscaled photo so its strokes come out larger.

A network paints strokes at the scale of its training crops, in pixels. To keep the
painting's proportions on a large photo, the network runs on the photo divided by
``style_scale`` and the result is upsampled; ``detail`` adds back the photo's fine
luminance detail that the downscale removed.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

MIN_STYLE_SCALE, MAX_STYLE_SCALE = 0.5, 8.0
#: Rec. 709 luma weights: the fine detail is put back as luminance only, so it adds no colour.
_LUMA = (0.2126, 0.7152, 0.0722)


def check_style_scale(value: float) -> float:
    """``value`` as a float in [MIN_STYLE_SCALE, MAX_STYLE_SCALE], else a clear ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not MIN_STYLE_SCALE <= value <= MAX_STYLE_SCALE:
        raise ValueError(f"style_scale must be a number in [{MIN_STYLE_SCALE:g}, {MAX_STYLE_SCALE:g}] "
                         f"(1 = the network's own stroke size, 2 = strokes twice as large), got {value!r}")
    return float(value)


def working_size(height: int, width: int, style_scale: float) -> tuple[int, int]:
    """The size the network runs at for an image of ``height`` x ``width``."""
    return max(1, round(height / style_scale)), max(1, round(width / style_scale))


def stylize_at_scale(run: Callable[[torch.Tensor], torch.Tensor], content: torch.Tensor, style_scale: float,
                     detail: float = 0.0) -> torch.Tensor:
    """``run`` (the network, 1x3xhxw -> 1x3xhxw) applied at ``1 / style_scale`` of ``content``'s
    size and upsampled back; ``detail`` (0..1) of the photo's lost fine luminance is added."""
    height, width = content.shape[-2:]
    size = working_size(height, width, style_scale)
    if size == (height, width):
        return run(content)
    small = F.interpolate(content, size=size, mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    styled = F.interpolate(run(small).float(), size=(height, width), mode="bicubic", align_corners=False)
    if detail > 0.0:
        lost = content - F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
        luma = (lost * lost.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        styled = styled + detail * luma
    return styled.clamp_(0, 1)


__all__ = ["MAX_STYLE_SCALE", "MIN_STYLE_SCALE", "check_style_scale", "stylize_at_scale", "working_size"]
