"""Limits on the videos fst accepts, checked from the container header before any frame is decoded.

Each limit is taken from the call (``VideoLimits(...)``), else from its environment
variable, else from the defaults given to :meth:`VideoLimits.from_env` (the library's
are generous: a feature film passes; the app passes stricter ones).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .. import settings

ENVIRONMENT = {
    "max_seconds": "FST_VIDEO_MAX_SECONDS",
    "max_pixels": "FST_VIDEO_MAX_PIXELS",
    "max_fps": "FST_VIDEO_MAX_FPS",
    "max_streams": "FST_VIDEO_MAX_STREAMS",
    "max_bytes": "FST_VIDEO_MAX_BYTES",
}


@dataclasses.dataclass(frozen=True)
class VideoLimits:
    """What a video may be (environment variables in brackets)."""

    max_seconds: float = 4 * 3600.0     # duration of the part processed [FST_VIDEO_MAX_SECONDS]
    max_pixels: int = 8192 * 4320       # width x height of a frame (8K) [FST_VIDEO_MAX_PIXELS]
    max_fps: float = 240.0              # frame rate [FST_VIDEO_MAX_FPS]
    max_streams: int = 64               # streams in the container (video, audio, subtitles...) [FST_VIDEO_MAX_STREAMS]
    max_bytes: int = 16 << 30           # file size [FST_VIDEO_MAX_BYTES]

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{field.name} must be a positive number, got {value!r}")

    @classmethod
    def from_env(cls, defaults: "VideoLimits | None" = None) -> "VideoLimits":
        """``defaults`` (else the class defaults) with any ``FST_VIDEO_*`` variable applied.

        A variable that is not a positive number is ignored with a warning: a bad setting
        must not break every request.
        """
        base = defaults or cls()
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            values[name] = settings.env_positive(variable, getattr(base, name))
        return dataclasses.replace(base, **values)


__all__ = ["ENVIRONMENT", "VideoLimits"]
