"""Video files: stylize and/or colorize them, without flicker.

>>> from fst import FastStyle
>>> from fst.video import VideoOptions, process_video
>>> model = FastStyle.from_pretrained("models/starry_night_rt")
>>> process_video("in.mp4", "out.mp4", style=model, options=VideoOptions(max_side=640))

* :mod:`fst.video.source` reads a video safely (PyAV): header checks and limits before
  decoding, RGB frames with their timestamps and rotation, the audio packets.
* :mod:`fst.video.pipeline` runs the networks on every frame, stabilized over time by
  :mod:`fst.temporal` (motion-compensated blending, cut detection).
* :mod:`fst.video.sink` writes H.264 MP4 (yuv420p) with the same timing, rotation and
  audio, under a temporary name renamed at the end.
"""
from __future__ import annotations

from ..errors import InvalidVideoError
from .limits import VideoLimits
from .pipeline import DEFAULT_STABILITY, FrameProcessor, VideoOptions, VideoReport, process_video
from .source import VideoInfo, VideoSource

__all__ = ["DEFAULT_STABILITY", "FrameProcessor", "InvalidVideoError", "VideoInfo", "VideoLimits", "VideoOptions",
           "VideoReport", "VideoSource", "process_video"]
