"""Dense motion between video frames in pure PyTorch: optical flow and warping.

The flow is pyramidal Lucas-Kanade made dense: on an image pyramid, coarse to fine, the
flow from the coarser level is refined by a few Gauss-Newton steps, each solving for every
pixel the 2x2 least-squares system of brightness constancy summed over a square window
(plus a small Tikhonov term, so flat regions keep the coarser estimate instead of
amplifying noise). It is meant for small frames (about 160 px on the longer side), where
it costs a few milliseconds on a CPU; :func:`resize_flow` carries it to any output size.

Convention: the flow maps the *current* frame onto the *previous* one,
``previous(x + flow(x)) ~ current(x)``, so :func:`warp` of the previous frame (or of the
previous styled output) by that flow lines it up with the current frame.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights: the intensity the flow is computed on.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """Bx3xHxW RGB (any range) -> Bx1xHxW luma; Bx1xHxW is returned as it is."""
    if rgb.shape[1] == 1:
        return rgb
    if rgb.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got shape {tuple(rgb.shape)}")
    weights = torch.tensor(LUMA_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(dim=1, keepdim=True)


def pixel_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """1x2xHxW pixel coordinates (x, y) of a HxW image, in ``like``'s dtype and device."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=like.dtype, device=like.device),
                            torch.arange(width, dtype=like.dtype, device=like.device), indexing="ij")
    return torch.stack((xs, ys)).unsqueeze(0)


@functools.lru_cache(maxsize=8)
def _sampling_grid(height: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1xHxWx2 centres of the pixels of a HxW image in grid_sample's [-1, 1] coordinates."""
    like = torch.empty(0, dtype=dtype, device=device)
    grid = pixel_grid(height, width, like)[0].permute(1, 2, 0).unsqueeze(0) + 0.5
    return grid * torch.tensor((2.0 / width, 2.0 / height), dtype=dtype, device=device) - 1.0


def warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` (BxCxHxW) at ``x + flow(x)`` (flow Bx2xHxW, in pixels), bilinearly.

    Returns the warped image and a Bx1xHxW mask that is 1 where the sampled point lies
    inside the image and 0 where it falls outside (those pixels repeat the border).
    """
    height, width = image.shape[-2:]
    if flow.shape[-2:] != (height, width) or flow.shape[1] != 2:
        raise ValueError(f"flow of shape {tuple(flow.shape)} does not fit an image of size {height}x{width}")
    scale = torch.tensor((2.0 / width, 2.0 / height), dtype=image.dtype, device=flow.device)
    grid = torch.addcmul(_sampling_grid(height, width, image.dtype, flow.device),
                         flow.permute(0, 2, 3, 1).to(image.dtype), scale)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = grid.abs().amax(dim=-1, keepdim=True).le_(1.0).permute(0, 3, 1, 2)
    return warped, inside.to(image.dtype)


def resize_flow(flow: torch.Tensor, size: tuple[int, int], vectors: int = 2) -> torch.Tensor:
    """``flow`` (BxCxhxw) resampled to ``size`` (H, W), bilinearly; its first two channels are
    the flow's (x, y) vectors and are scaled to the new pixels. Further channels (when
    ``flow`` carries other per-pixel data along) are resampled as they are."""
    height, width = size
    if tuple(flow.shape[-2:]) == (height, width):
        return flow
    scale = torch.ones(flow.shape[1], dtype=flow.dtype, device=flow.device)
    scale[:vectors] = torch.tensor((width / flow.shape[-1], height / flow.shape[-2]))[:vectors]
    resized = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    return resized.mul_(scale.view(1, -1, 1, 1))


def box_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of every (2r+1)x(2r+1) window of each channel (replicate borders), same size out.

    Sums of shifted views: a few vectorised additions per row and column, much cheaper on
    a CPU than a convolution (or running sums) for the small radii used here.
    """
    if radius < 1:
        return x
    size, (height, width) = 2 * radius + 1, x.shape[-2:]
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    rows = padded[..., :, :width].clone()
    for shift in range(1, size):
        rows += padded[..., :, shift:shift + width]
    total = rows[..., :height, :].clone()
    for shift in range(1, size):
        total += rows[..., shift:shift + height, :]
    return total.div_(size * size)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences along x and y (replicate borders)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    ix = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) * 0.5
    iy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) * 0.5
    return ix, iy


def _pyramid(image: torch.Tensor, levels: int, min_side: int) -> list[torch.Tensor]:
    """Finest first; each level is the previous one blurred and halved."""
    pyramid = [image]
    while len(pyramid) < levels and min(pyramid[-1].shape[-2:]) >= 2 * min_side:
        pyramid.append(F.avg_pool2d(box_filter(pyramid[-1], 1), 2, ceil_mode=True))
    return pyramid


def estimate_flow(
    previous: torch.Tensor,
    current: torch.Tensor,
    *,
    levels: int = 4,
    iterations: int = 3,
    window: int = 3,
    regularization: float = 2e-5,
    min_side: int = 8,
) -> torch.Tensor:
    """Dense optical flow (Bx2xHxW, in pixels) with ``previous(x + flow(x)) ~ current(x)``.

    Args:
        previous, current: BxCxHxW frames with C = 1 (intensity) or 3 (RGB), values in [0, 1].
        levels: pyramid levels (each halves the size); 4 follows motions of about 10 px.
        iterations: Gauss-Newton refinements per level.
        window: radius of the square window (in pixels of each level) over which the motion
            is assumed constant.
        regularization: added to the diagonal of each 2x2 system (units of squared
            intensity gradient): where the image is flatter than this, the update is damped.
        min_side: the coarsest level is at least this many pixels on its shorter side.
    """
    if previous.shape != current.shape:
        raise ValueError(f"frames differ in shape: {tuple(previous.shape)} vs {tuple(current.shape)}")
    if previous.dim() != 4:
        raise ValueError(f"expected BxCxHxW frames, got shape {tuple(previous.shape)}")
    previous, current = to_gray(previous.float()), to_gray(current.float())
    pyramid_previous = _pyramid(previous, levels, min_side)
    pyramid_current = _pyramid(current, levels, min_side)
    flow = torch.zeros_like(pyramid_current[-1]).expand(-1, 2, -1, -1).contiguous()
    for level_previous, level_current in zip(reversed(pyramid_previous), reversed(pyramid_current)):
        flow = resize_flow(flow, tuple(level_current.shape[-2:]))
        for _ in range(iterations):
            warped, _ = warp(level_previous, flow)
            ix, iy = _gradients(0.5 * (warped + level_current))
            it = warped - level_current
            sums = box_filter(torch.cat((ix * ix, ix * iy, iy * iy, ix * it, iy * it), dim=1), window)
            sxx, sxy, syy, sxt, syt = (sums[:, i:i + 1] for i in range(5))
            sxx, syy = sxx + regularization, syy + regularization
            det = sxx * syy - sxy * sxy
            du = (sxy * syt - syy * sxt) / det
            dv = (sxy * sxt - sxx * syt) / det
            # The linearisation holds within about a pixel: larger steps are left to later iterations.
            flow = flow + torch.cat((du, dv), dim=1).clamp_(-1.0, 1.0)
        flow = box_filter(flow, 1)
    return flow


__all__ = ["box_filter", "estimate_flow", "pixel_grid", "resize_flow", "to_gray", "warp"]
