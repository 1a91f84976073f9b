"""Temporal smoothing of styled video frames, and a flicker metric to measure it.

Feed-forward style networks react strongly to small input changes (sensor noise,
compression), so a static scene filmed by a webcam "boils". Blending each styled
frame with the previous output (an exponential moving average) trades a little
motion lag for much less flicker.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def temporal_blend(current: np.ndarray, previous: np.ndarray | None, alpha: float) -> np.ndarray:
    """``(1 - alpha) * current + alpha * previous`` as uint8.

    ``alpha`` is the weight of the previous styled frame: 0 turns blending off, values
    near 1 freeze the picture. ``current`` is returned unchanged when there is no
    previous frame or its shape differs (first frame, resolution or style switched).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if previous is None or alpha == 0.0 or previous.shape != current.shape:
        return current
    mixed = current.astype(np.float32) * (1.0 - alpha) + previous.astype(np.float32) * alpha
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


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


__all__ = ["flicker", "noisy_static_frames", "smoothed", "temporal_blend"]
