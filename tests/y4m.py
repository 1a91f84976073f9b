"""A minimal YUV4MPEG2 (``.y4m``) writer: the fake-camera input of Chromium.

Chromium's ``--use-file-for-fake-video-capture=<file.y4m>`` plays such a file in a loop
as the webcam. Only what it needs: 4:2:0 chroma (``C420jpeg``), progressive frames,
square pixels, full-range BT.601 conversion from RGB.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np


def rgb_to_yuv420(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HxWx3 uint8 RGB (even H and W) -> Y (HxW), U and V (H/2 x W/2) uint8 planes."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] % 2 or frame.shape[1] % 2:
        raise ValueError(f"expected an HxWx3 frame with even sides, got {frame.shape}")
    rgb = frame.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = (b - y) * 0.564 + 128.0
    v = (r - y) * 0.713 + 128.0

    def subsample(plane: np.ndarray) -> np.ndarray:  # average each 2x2 block
        return (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2]) / 4.0

    def to_u8(plane: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(plane), 0, 255).astype(np.uint8)

    return to_u8(y), to_u8(subsample(u)), to_u8(subsample(v))


def write_y4m(path: str | Path, frames: Iterable[np.ndarray], fps: int = 15) -> Path:
    """Write RGB frames (all the same even size) to a 4:2:0 ``.y4m`` file; returns the path."""
    path = Path(path)
    with open(path, "wb") as out:
        size = None
        for frame in frames:
            frame = np.asarray(frame, dtype=np.uint8)
            if size is None:
                size = frame.shape[:2]
                out.write(f"YUV4MPEG2 W{size[1]} H{size[0]} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
            elif frame.shape[:2] != size:
                raise ValueError(f"frame size {frame.shape[:2]} differs from the first frame's {size}")
            out.write(b"FRAME\n")
            for plane in rgb_to_yuv420(frame):
                out.write(plane.tobytes())
        if size is None:
            raise ValueError("no frames to write")
    return path


def moving_pattern(count: int = 30, width: int = 320, height: int = 240) -> list[np.ndarray]:
    """``count`` RGB frames of a colourful scene with a moving square (for a fake camera)."""
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1),
                     np.full_like(xs, 128)], axis=-1).astype(np.uint8)
    frames = []
    for index in range(count):
        frame = base.copy()
        left = (index * 8) % (width - 60)
        frame[90:150, left:left + 60] = (250, 240, 40)
        frames.append(frame)
    return frames


def read_y4m_header(path: str | Path) -> dict[str, str]:
    """The header fields of a ``.y4m`` file (``W``, ``H``, ``F``, ``C`` ...), for tests."""
    with open(path, "rb") as handle:
        line = handle.readline().decode("ascii").split()
    if not line or line[0] != "YUV4MPEG2":
        raise ValueError(f"{path} is not a YUV4MPEG2 file")
    return {token[0]: token[1:] for token in line[1:]}
