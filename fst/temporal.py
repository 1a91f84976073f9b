"""Temporal smoothing of styled video frames, and metrics to measure it.

Feed-forward style networks react strongly to small input changes (sensor noise,
compression), so a static scene filmed by a webcam "boils". Blending each styled
frame with the previous output (an exponential moving average) trades a little
motion lag for much less flicker: :func:`temporal_blend`, used by the webcam tab.

Moving scenes need the previous output moved along first, or the blend leaves
ghosts: :class:`MotionTracker` estimates the motion between consecutive input frames
(:mod:`fst.motion`) and how far it can be trusted (occlusions, pixels entering the
frame, cuts), and :class:`Stabilizer` blends each output with the previous output
warped by that motion, weighted by that trust. :func:`warping_error` is the standard
measure of the result (Lai et al. 2018): the difference between each output and the
previous one warped by the true motion, over the pixels visible in both.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .motion import LUMA_WEIGHTS, box_filter, estimate_flow, resize_flow, warp


def temporal_blend(current: np.ndarray, previous: np.ndarray | None, alpha: float | np.ndarray) -> np.ndarray:
    """``(1 - alpha) * current + alpha * previous``, as uint8 for uint8 frames (float stays float).

    ``alpha`` is the weight of the previous frame: 0 turns blending off, values near 1
    freeze the picture. It is one number, or one weight per pixel (an HxW or HxWx1 array
    in [0, 1]). ``current`` is returned unchanged when there is no previous frame or its
    shape differs (first frame, resolution or style switched).
    """
    if isinstance(alpha, np.ndarray):
        if alpha.size and not (np.isfinite(alpha).all() and 0.0 <= alpha.min() and alpha.max() <= 1.0):
            raise ValueError("per-pixel alpha must hold finite values in [0, 1]")
        weight = torch.from_numpy(alpha.astype(np.float32).reshape(alpha.shape[:2] + (1,) * (current.ndim - 2)))
    elif not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    else:
        weight = float(alpha)
    if previous is None or previous.shape != current.shape or not np.any(alpha):
        return current
    mixed = _mix(torch.from_numpy(np.ascontiguousarray(current)).float(),
                 torch.from_numpy(np.array(previous, dtype=np.float32)), weight)
    return _to_array(mixed, current.dtype)


def _mix(current: torch.Tensor, previous: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
    """``current + weight * (previous - current)``, computed in (and returned as) ``previous``'s buffer."""
    return previous.sub_(current).mul_(weight).add_(current)


def _to_array(values: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """A float tensor as an array of ``dtype`` (uint8: rounded and clamped)."""
    if dtype == np.uint8:
        return values.add_(0.5).clamp_(0.0, 255.0).to(torch.uint8).numpy()
    return values.numpy().astype(dtype, copy=False)


def flicker(frames: Iterable[np.ndarray]) -> float:
    """Mean absolute difference (0..255 scale) between consecutive frames.

    For a static scene every difference is flicker, so lower is better; 0 for fewer
    than two frames.
    """
    total, count, previous = 0.0, 0, None
    for frame in frames:
        current = np.asarray(frame, dtype=np.float32)
        if previous is not None:
            if current.shape != previous.shape:
                raise ValueError(f"frame shapes differ: {previous.shape} vs {current.shape}")
            total += float(np.abs(current - previous).mean())
            count += 1
        previous = current
    return total / count if count else 0.0


def noisy_static_frames(image: np.ndarray, count: int, sigma: float = 4.0, seed: int = 0) -> list[np.ndarray]:
    """``count`` copies of a static HxWx3 uint8 ``image`` with Gaussian sensor noise (std ``sigma``)."""
    rng = np.random.default_rng(seed)
    base = np.asarray(image, dtype=np.float32)
    return [np.clip(np.rint(base + rng.normal(0.0, sigma, base.shape)), 0, 255).astype(np.uint8)
            for _ in range(count)]


def smoothed(outputs: Sequence[np.ndarray], alpha: float) -> list[np.ndarray]:
    """``outputs`` after :func:`temporal_blend` is applied frame by frame, as the app does."""
    result: list[np.ndarray] = []
    previous = None
    for frame in outputs:
        previous = temporal_blend(frame, previous, alpha)
        result.append(previous)
    return result


# --------------------------------------------------------------------------- motion-compensated blending

TRACK_SIDE = 160
"""Motion is estimated on frames downscaled to this longer side (a few ms per frame on a CPU)."""
CUT_THRESHOLD = 0.4
"""Histogram distance above which two consecutive frames belong to different shots."""
MIN_TRACKED = 0.25
"""Below this fraction of trusted pixels the motion is given up (a new shot, or chaos)."""
MATCH_TOLERANCE = (0.03, 0.09)
"""Mean RGB difference (in [0, 1]) between a pixel and its warped previous input up to which the
motion is fully trusted, and from which it is not trusted at all (occlusions, lighting changes)."""


def histogram_distance(first: np.ndarray, second: np.ndarray, bins: int = 32) -> float:
    """Half the L1 distance between the intensity histograms of two frames (HxW or HxWxC, uint8).

    0 for frames with the same distribution of intensities, 1 for disjoint ones; a cut
    between two shots typically gives more than 0.4, motion within a shot much less.
    """
    def histogram(frame: np.ndarray) -> np.ndarray:
        values = np.asarray(frame, dtype=np.float32)
        if values.ndim == 3 and values.shape[-1] >= 3:
            values = values[..., :3] @ np.asarray(LUMA_WEIGHTS, np.float32)
        elif values.ndim == 3:
            values = values[..., 0]
        counts, _ = np.histogram(values, bins=bins, range=(0.0, 256.0))
        return counts / max(1, values.size)

    return float(np.abs(histogram(first) - histogram(second)).sum() / 2.0)


def _as_tensor(frame: np.ndarray) -> torch.Tensor:
    """HxWxC array -> 1xCxHxW float32 tensor (values unchanged)."""
    return torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)


@dataclasses.dataclass
class Motion:
    """How the current frame relates to the previous one, at the tracking resolution."""

    flow: torch.Tensor         # 1x2xhxw: previous(x + flow(x)) ~ current(x), in tracking pixels
    confidence: torch.Tensor   # 1x1xhxw in [0, 1]: 0 where the motion explains nothing (occlusion, outside)
    _resized: dict = dataclasses.field(default_factory=dict, repr=False)

    def at(self, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow (1x2xHxW, in pixels of that size) and the confidence (1x1xHxW) at ``size`` = (H, W)."""
        if size not in self._resized:
            both = resize_flow(torch.cat((self.flow, self.confidence), dim=1), size, vectors=2)
            self._resized[size] = (both[:, :2], both[:, 2:].clamp_(0.0, 1.0))
        return self._resized[size]

    def warp(self, previous: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``previous`` (1xCxHxW float, any size, e.g. the previous styled frame) moved onto the
        current frame, and the confidence (1x1xHxW) at that size."""
        flow, confidence = self.at(tuple(previous.shape[-2:]))
        return warp(previous, flow)[0], confidence


class MotionTracker:
    """Follows the input frames of a video: motion from each frame to the next, and cuts.

    >>> tracker = MotionTracker()
    >>> motion = tracker.track(frame)   # None for the first frame and after a cut

    A cut is a frame whose intensity histogram differs from the previous one by more
    than ``cut_threshold`` (:func:`histogram_distance`), or whose motion explains less
    than :data:`MIN_TRACKED` of the picture; ``cuts`` counts them.
    """

    def __init__(self, side: int = TRACK_SIDE, cut_threshold: float = CUT_THRESHOLD,
                 tolerance: tuple[float, float] = MATCH_TOLERANCE):
        if side < 16:
            raise ValueError(f"side must be at least 16 pixels, got {side!r}")
        if not 0.0 < cut_threshold <= 1.0:
            raise ValueError(f"cut_threshold must be in (0, 1], got {cut_threshold!r}")
        if not 0.0 <= tolerance[0] < tolerance[1]:
            raise ValueError(f"tolerance must be two increasing values >= 0, got {tolerance!r}")
        self.side, self.cut_threshold, self.tolerance = side, cut_threshold, tolerance
        self.cuts = 0
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (the next one starts a new shot)."""
        self._previous = None

    def track(self, frame: np.ndarray) -> Motion | None:
        """Motion from the previous frame to ``frame`` (HxWx3 uint8), or None when there is
        nothing to follow: first frame, size change or cut."""
        height, width = frame.shape[:2]
        scale = min(1.0, self.side / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.asarray(Image.fromarray(np.ascontiguousarray(frame[..., :3])).resize(size, Image.Resampling.BILINEAR,
                                                                                       reducing_gap=2.0))
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            return None
        if histogram_distance(previous, small) > self.cut_threshold:
            self.cuts += 1
            return None
        before, now = _as_tensor(previous) / 255.0, _as_tensor(small) / 255.0
        flow = estimate_flow(before, now)
        warped, inside = warp(before, flow)
        error = (warped - now).abs().mean(dim=1, keepdim=True)
        low, high = self.tolerance
        confidence = ((high - error) / (high - low)).clamp_(0.0, 1.0) * inside
        confidence = -F.max_pool2d(-confidence, 3, stride=1, padding=1)   # distrust the rims of occlusions too
        if float(confidence.mean()) < MIN_TRACKED:
            self.cuts += 1
            return None
        return Motion(flow, confidence)


DETAIL_BANDS = (2, 6)
"""Box radii (pixels) splitting an output into fine detail, coarser detail and the rest (see Stabilizer)."""
DETAIL_WINDOW = 4
"""The energy of each detail band is measured over blocks of this many pixels a side (and their neighbours)."""
MAX_DETAIL_GAIN = 2.0


def restore_detail(blended: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """``blended`` (1xCxHxW) with each detail band rescaled to the local energy it has in ``current``.

    Averaging two frames whose textures are painted differently (as a style network does from
    one frame to the next) cancels part of the texture: the result is steadier but duller.
    The bands of :data:`DETAIL_BANDS` get their contrast back (gain at most
    :data:`MAX_DETAIL_GAIN`), so the blend keeps the style's texture while its strokes stay
    where the warped previous frame put them.
    """
    def local_energy(detail: torch.Tensor) -> torch.Tensor:   # at 1/DETAIL_WINDOW of the size: cheap
        return box_filter(F.avg_pool2d(detail.square().sum(dim=1, keepdim=True), DETAIL_WINDOW, ceil_mode=True), 1)

    size = tuple(blended.shape[-2:])
    result = torch.zeros_like(blended)
    for radius in DETAIL_BANDS:
        current_low, blended_low = box_filter(current, radius), box_filter(blended, radius)
        current_detail, blended_detail = current.sub_(current_low), blended.sub_(blended_low)
        gain = local_energy(current_detail).div_(local_energy(blended_detail).clamp_min_(1e-2))
        gain = F.interpolate(gain.sqrt_().clamp_(1.0, MAX_DETAIL_GAIN), size=size, mode="bilinear",
                             align_corners=False)
        result += blended_detail.mul_(gain)
        current, blended = current_low, blended_low
    return result.add_(blended)


class Stabilizer:
    """Blends each output frame with the previous output warped by the tracked motion.

    ``alpha`` is the weight of the warped previous output where the motion is trusted
    (scaled down by :attr:`Motion.confidence` elsewhere); 0 turns stabilization off.
    Outputs are HxWxC arrays (uint8 frames, or float data such as a*b* colours); each
    output stream (styled frames, colours) needs its own Stabilizer, all fed the same
    :class:`Motion`. Passing ``motion=None`` (first frame, cut) restarts from the output.
    ``keep_detail`` restores the texture contrast the blend averages away
    (:func:`restore_detail`): right for styled frames, not for smooth data like colours.
    """

    def __init__(self, alpha: float = 0.6, keep_detail: bool = False):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be a number in [0, 1), got {alpha!r}")
        self.alpha, self.keep_detail = float(alpha), keep_detail
        self._previous: torch.Tensor | None = None   # 1xCxHxW float32

    def reset(self) -> None:
        """Forget the previous output."""
        self._previous = None

    def __call__(self, output: np.ndarray, motion: Motion | None) -> np.ndarray:
        """The stabilized ``output`` (HxWxC, same dtype), which is also kept for the next frame."""
        if self.alpha == 0:
            return output
        current = torch.from_numpy(np.ascontiguousarray(output)).permute(2, 0, 1).unsqueeze(0).float()
        previous = self._previous
        if motion is not None and previous is not None and previous.shape == current.shape:
            warped, confidence = motion.warp(previous)
            reference = current.clone() if self.keep_detail else current
            blended = _mix(current, warped, confidence * self.alpha)
            current = restore_detail(blended, reference) if self.keep_detail else blended
            if output.dtype == np.uint8:
                current.clamp_(0.0, 255.0)
        self._previous = current
        return _to_array(current[0].permute(1, 2, 0).clone(memory_format=torch.contiguous_format), output.dtype)


def warping_error(previous: np.ndarray, current: np.ndarray, flow: np.ndarray,
                  mask: np.ndarray | None = None) -> float:
    """Temporal warping error between two consecutive output frames (Lai et al. 2018).

    The mean squared difference, on a [0, 1] scale, between ``current`` and ``previous``
    warped by ``flow`` (HxWx2, ``previous(x + flow(x)) ~ current(x)``, usually measured on
    the input frames), over the pixels where ``mask`` (HxW, bool or weights) is set and the
    warp stays inside the frame. Lower is steadier; frames are HxWxC uint8 arrays.
    """
    if previous.shape != current.shape or flow.shape != current.shape[:2] + (2,):
        raise ValueError(f"shapes do not match: previous {previous.shape}, current {current.shape}, "
                         f"flow {flow.shape}")
    warped, inside = warp(_as_tensor(previous), _as_tensor(flow))
    difference = ((warped - _as_tensor(current)) / 255.0).pow(2).mean(dim=1)[0]
    weights = inside[0, 0]
    if mask is not None:
        weights = weights * torch.from_numpy(np.asarray(mask, dtype=np.float32))
    total = float(weights.sum())
    return float((difference * weights).sum()) / total if total else 0.0


def shifted_copy(content: torch.Tensor, *, max_shift: int = 4, noise: float = 0.02
                 ) -> tuple[torch.Tensor, tuple[int, int]]:
    """``content`` (Bx3xHxW in [0, 1]) moved by a random whole number of pixels (at most ``max_shift``
    each way) with Gaussian noise of std ``noise``: a synthetic next frame (ReCoNet-style). Returns
    it and the shift (dy, dx); draws from torch's global random generator."""
    if max_shift < 1 or min(content.shape[-2:]) <= 2 * max_shift:
        raise ValueError(f"max_shift={max_shift} does not fit {tuple(content.shape[-2:])} images")
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,)))
    moved = torch.roll(content, shifts=(dy, dx), dims=(-2, -1))
    return (moved + noise * torch.randn_like(moved)).clamp(0.0, 1.0), (dy, dx)


def stability_loss(output: torch.Tensor, moved_output: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """Training-time stability (Gupta et al. 2017): the network's output for a frame moved by a known
    shift (with noise, :func:`shifted_copy`) must be its output for the frame, moved alike.

    The mean squared difference between ``moved_output`` and ``output`` shifted by ``shift``,
    over the pixels both show (the ones the shift wrapped around are left out). Differentiable.
    """
    dy, dx = shift
    expected = torch.roll(output, shifts=(dy, dx), dims=(-2, -1))
    rows = slice(max(dy, 0), output.shape[-2] + min(dy, 0))
    columns = slice(max(dx, 0), output.shape[-1] + min(dx, 0))
    return F.mse_loss(moved_output[..., rows, columns], expected[..., rows, columns])


__all__ = ["CUT_THRESHOLD", "Motion", "MotionTracker", "Stabilizer", "flicker", "histogram_distance",
           "noisy_static_frames", "restore_detail", "shifted_copy", "smoothed", "stability_loss", "temporal_blend",
           "warping_error"]
