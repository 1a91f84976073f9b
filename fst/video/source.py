"""Reading a video safely with PyAV: header checks first, then RGB frames and audio packets.

Every problem becomes an :class:`fst.errors.InvalidVideoError` that says what is wrong:
files that are not videos (images, audio, text, playlists), truncated or corrupt data,
containers with too many streams, frames too large, rates too high, clips too long. The
limits (:class:`fst.video.limits.VideoLimits`) are checked from the header before any
frame is decoded, and again while decoding, in case the header lied.

Only the demuxers of common video files are enabled (no playlists, concatenation scripts
or network protocols), the file is read through a Python file object, and FFmpeg may not
open any other file on its behalf.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import stat
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InvalidVideoError
from ..imageio import BACKGROUND
from .limits import VideoLimits

logger = logging.getLogger(__name__)

# FFmpeg demuxer names (AVInputFormat.name) fst reads; everything else is refused by FFmpeg itself.
VIDEO_DEMUXERS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpegts", "mpeg", "flv", "ogg", "asf",
                  "nut", "yuv4mpegpipe", "gif", "apng", "mxf", "h264", "hevc", "m4v", "mjpeg", "ivf")
# Still-image demuxers: enabled only so that an image gets a message saying it is one.
IMAGE_DEMUXERS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif_pipe",
                  "j2k_pipe", "qoi_pipe", "pam_pipe", "ppm_pipe", "pgm_pipe", "pgmyuv_pipe", "svg_pipe")
MAX_SIDE = 16384
"""Frames wider or taller than this are refused whatever the pixel limit (H.264's own bound)."""
DEFAULT_FPS = Fraction(25)
"""Frame rate assumed for streams that have neither timestamps nor a declared rate."""
VIDEO_HINT = "choose an MP4, MOV, MKV, WebM or AVI video"


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What the container header says about a video (before any frame is decoded)."""

    container: str             # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str                 # video codec, e.g. "h264"
    width: int
    height: int
    pixel_format: str | None   # e.g. "yuv420p", "yuv420p10le", "yuva420p"
    fps: Fraction | None       # average frame rate, when known
    duration: float | None     # seconds, when known
    frames: int | None         # frame count, when the header has one
    audio: str | None          # codec of the audio stream that is kept, e.g. "aac"
    streams: int               # all streams in the container

    def frames_between(self, start: float, end: float | None) -> int | None:
        """Estimated number of frames in ``[start, end)`` (None when unknown)."""
        stop = self.duration if end is None else (end if self.duration is None else min(end, self.duration))
        if stop is not None and self.fps:
            return max(0, math.ceil((stop - start) * self.fps))
        return self.frames if start == 0 and end is None else None


@dataclasses.dataclass
class DecodedFrame:
    """One decoded frame: RGB pixels (alpha composited onto white) and where it sits in time."""

    image: np.ndarray          # HxWx3 uint8, in the stored orientation
    pts: int                   # presentation time in ``time_base`` units, from the first frame kept
    time_base: Fraction
    time: float                # seconds in the source file
    rotation: int              # counter-clockwise degrees the player applies (display matrix), 0 if none
    display_matrix: tuple[int, ...] | None   # FFmpeg's 3x3 display matrix (9 ints), when the file has one


def _refuse_nested_open(url: str, flags: int, options: dict) -> Any:
    """FFmpeg's io_open hook: a video file never needs to open another file."""
    raise PermissionError(f"refusing to open {url!r} referenced by the input")


def _ffmpeg_detail(error: BaseException) -> str:
    message = getattr(error, "strerror", None) or str(error)
    return str(message).split(":")[0].strip()[:200]


class VideoSource:
    """An input video, opened and checked; iterate :meth:`items` for frames and audio packets.

    >>> with VideoSource("clip.mp4", start=2.0, end=5.0) as video:
    ...     print(video.info.width, video.info.fps)
    ...     for item in video.items(max_side=640):
    ...         ...   # DecodedFrame, or an av.Packet of the kept audio stream

    Raises :class:`InvalidVideoError` when the file cannot be used, before decoding
    anything when the header tells (limits, streams, image or audio files).
    """

    def __init__(self, path: str | os.PathLike, *, limits: VideoLimits | None = None, start: float = 0.0,
                 end: float | None = None):
        self.path = Path(path)
        self.limits = limits or VideoLimits.from_env()
        self.start, self.end = _check_range(start, end)
        self._file = None
        self._container = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening and checks
    def _open(self) -> None:
        import av

        name = self.path.name
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            raise InvalidVideoError(f"{self.path}: no such file") from None
        except OSError as error:
            raise InvalidVideoError(f"{self.path}: cannot be read ({error.strerror})") from None
        if not stat.S_ISREG(status.st_mode):
            raise InvalidVideoError(f"{self.path} is not a regular file; {VIDEO_HINT}")
        if status.st_size == 0:
            raise InvalidVideoError(f"{name} is empty (0 bytes); {VIDEO_HINT}")
        if status.st_size > self.limits.max_bytes:
            raise InvalidVideoError(f"{name} is {_megabytes(status.st_size)}; the limit is "
                                    f"{_megabytes(self.limits.max_bytes)} (FST_VIDEO_MAX_BYTES)")
        self._file = open(self.path, "rb")
        options = {"format_whitelist": ",".join(VIDEO_DEMUXERS + IMAGE_DEMUXERS),
                   # FFmpeg stops adding streams past this: a file with thousands opens quickly.
                   "max_streams": str(self.limits.max_streams + 1)}
        try:
            self._container = av.open(self._file, mode="r", container_options=options, io_open=_refuse_nested_open,
                                      metadata_errors="replace", timeout=30.0)
        except av.error.EOFError:
            raise InvalidVideoError(f"{name} ends before any video data: it has no frames, or it is truncated; "
                                    f"{VIDEO_HINT}") from None
        except av.FFmpegError as error:
            raise InvalidVideoError(f"{name} is not a video file fst can read, or it is truncated or corrupt "
                                    f"({_ffmpeg_detail(error)}); {VIDEO_HINT}") from None
        except (PermissionError, ValueError) as error:   # a playlist/script that names other files
            raise InvalidVideoError(f"{name} is not a video file ({error}); {VIDEO_HINT}") from None
        self.info = self._check_header(name)

    def _check_header(self, name: str) -> VideoInfo:
        container, limits = self._container, self.limits
        format_name = container.format.name
        if format_name in IMAGE_DEMUXERS:
            kind = format_name.replace("_pipe", "").upper() if format_name != "image2" else "still"
            raise InvalidVideoError(f"{name} is a {kind} image, not a video; stylize images with `fst stylize` "
                                    "or the Image tab")
        if len(container.streams) > limits.max_streams:
            raise InvalidVideoError(f"{name} has more than {limits.max_streams} streams; a video needs one video and "
                                    "one audio stream (limit: FST_VIDEO_MAX_STREAMS)")
        videos = [s for s in container.streams.video if not s.disposition & s.disposition.attached_pic]
        if not videos:
            audio = [s.codec_context.name for s in container.streams.audio if s.codec_context is not None]
            what = f", only audio ({', '.join(audio[:3])})" if audio else ""
            raise InvalidVideoError(f"{name} has no video stream{what}; {VIDEO_HINT}")
        stream = videos[0]
        codec = stream.codec_context
        if codec is None or codec.name in (None, "", "none"):
            raise InvalidVideoError(f"{name}: the video stream cannot be decoded (unknown codec); the file is "
                                    f"truncated or corrupt, or uses a codec FFmpeg does not have")
        width, height = int(codec.width or 0), int(codec.height or 0)
        _check_size(name, width, height, limits)
        fps = stream.average_rate or stream.guessed_rate or None
        fps = Fraction(fps) if fps else None
        if fps is not None and fps > limits.max_fps:
            raise InvalidVideoError(f"{name} runs at {float(fps):g} frames per second; the limit is "
                                    f"{limits.max_fps:g} (FST_VIDEO_MAX_FPS)")
        duration = _duration(container, stream)
        if duration is not None and self.start >= duration:
            raise InvalidVideoError(f"start={self.start:g} s is past the end of {name} ({duration:.2f} s long)")
        stop = self.end if duration is None else (duration if self.end is None else min(self.end, duration))
        if stop is not None and stop - self.start > limits.max_seconds:
            raise InvalidVideoError(f"{name}: {stop - self.start:.1f} s to process; the limit is "
                                    f"{limits.max_seconds:g} s (FST_VIDEO_MAX_SECONDS); use start/end to take a part")
        audio_streams = [s for s in container.streams.audio if s.codec_context is not None and s.codec_context.name]
        self._video, self._audio = stream, (audio_streams[0] if audio_streams else None)
        return VideoInfo(container=format_name, codec=codec.name, width=width, height=height,
                         pixel_format=codec.format.name if codec.format else None, fps=fps, duration=duration,
                         frames=int(stream.frames) if stream.frames else None,
                         audio=self._audio.codec_context.name if self._audio else None,
                         streams=len(container.streams))

    @property
    def audio_stream(self) -> Any:
        """The PyAV stream of the audio that is kept (the first one), or None."""
        return self._audio

    # ------------------------------------------------------------------ decoding
    def items(self, max_side: int | None = None) -> Iterator[Any]:
        """Video frames (:class:`DecodedFrame`) in ``[start, end)``, interleaved with the audio packets
        of :attr:`audio_stream`, in file order.

        Frames are downscaled so that their longer side is at most ``max_side``; all have the
        size of the first one (a stream that changes resolution midway is rescaled to it).

        Raises :class:`InvalidVideoError` for undecodable data, a video with no frame in
        the range, and frames that break the limits.
        """
        import av

        name, limits, video = self.path.name, self.limits, self._video
        video.thread_type = "SLICE"   # frame threading would hide the errors of truncated data
        time_base = video.time_base or Fraction(1, 90000)
        frame_period = 1 / (self.info.fps or DEFAULT_FPS)
        max_frames = math.ceil(limits.max_seconds * limits.max_fps) + 1
        streams = [video] + ([self._audio] if self._audio is not None else [])
        first_pts, last_pts, count, size = None, None, 0, None
        try:
            if self.start > 0:
                self._container.seek(int(self.start / time_base), stream=video, backward=True)
            for packet in self._container.demux(*streams):
                if packet.stream.index != video.index:
                    if packet.dts is not None and packet.size:
                        yield packet
                    continue
                for frame in packet.decode():
                    seconds = float(frame.time) if frame.pts is not None and frame.time is not None else None
                    if seconds is None:   # no timestamps: count frames at the declared rate
                        seconds = self.start + float(count * frame_period)
                    if seconds < self.start - 1e-6:
                        continue
                    if self.end is not None and seconds >= self.end:
                        return
                    if seconds - self.start > limits.max_seconds or count >= max_frames:
                        raise InvalidVideoError(f"{name} is longer than its header says; the limit is "
                                                f"{limits.max_seconds:g} s (FST_VIDEO_MAX_SECONDS)")
                    _check_size(name, frame.width, frame.height, limits)
                    size = size or scaled_size(frame.width, frame.height, max_side)
                    pts = round(seconds / time_base)
                    if first_pts is None:
                        first_pts = pts
                    pts -= first_pts
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1    # repeated/missing timestamps: keep them strictly increasing
                    last_pts = pts
                    count += 1
                    yield DecodedFrame(_to_rgb(frame, size), pts, time_base, seconds, int(frame.rotation or 0),
                                       _display_matrix(frame))
        except av.FFmpegError as error:
            where = f"after {count} frame{'s' if count != 1 else ''}" if count else "at the first frame"
            raise InvalidVideoError(f"{name} is truncated or corrupt: decoding failed {where} "
                                    f"({_ffmpeg_detail(error)})") from None
        whole = self.start == 0 and self.end is None
        if count == 0:
            span = "" if whole else f" between {self.start:g} s and {self.end or 'the end'}"
            raise InvalidVideoError(f"{name} has no video frames{span}; {VIDEO_HINT}")
        if whole and self.info.frames and count < self.info.frames:
            raise InvalidVideoError(f"{name} is truncated or corrupt: its index lists {self.info.frames} frames "
                                    f"but only {count} could be read")

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Release the decoder and the file (safe to call twice)."""
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _check_range(start: Any, end: Any) -> tuple[float, float | None]:
    def seconds(label: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{label} must be a number of seconds >= 0, got {value!r}")
        return float(value)

    start = seconds("start", start)
    if end is None:
        return start, None
    end = seconds("end", end)
    if end <= start:
        raise ValueError(f"end ({end:g} s) must be after start ({start:g} s)")
    return start, end


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled down so the longer side is at most ``max_side`` (never up), as
    :func:`fst.inference.resize_max_side` rounds it."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_size(name: str, width: int, height: int, limits: VideoLimits) -> None:
    if max(width, height) > MAX_SIDE or width * height > limits.max_pixels:
        raise InvalidVideoError(f"{name}: frames of {width}x{height} pixels are too large; the limit is "
                                f"{limits.max_pixels / 1e6:.1f} megapixels (FST_VIDEO_MAX_PIXELS) and {MAX_SIDE} "
                                "pixels a side")


def _megabytes(size: float) -> str:
    return f"{size / 1e6:.3g} MB"


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


def _to_rgb(frame: Any, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 RGB of a decoded frame (any bit depth, alpha composited onto white), resized by swscale."""
    width, height = size
    form = frame.format
    has_alpha = form.has_palette or any(component.is_alpha for component in form.components)
    converted = frame.reformat(width=width, height=height, format="rgba" if has_alpha else "rgb24",
                               interpolation="AREA" if (width, height) != (frame.width, frame.height) else None)
    array = converted.to_ndarray()
    if not has_alpha:
        return array
    alpha = array[..., 3:].astype(np.float32) / 255.0
    background = np.asarray(BACKGROUND, np.float32)
    return np.rint(array[..., :3] * alpha + background * (1.0 - alpha)).astype(np.uint8)


def _display_matrix(frame: Any) -> tuple[int, ...] | None:
    from av.sidedata.sidedata import Type

    data = frame.side_data.get(Type.DISPLAYMATRIX)
    if data is None:
        return None
    values = np.frombuffer(bytes(data), dtype="<i4")
    return tuple(int(v) for v in values) if values.size == 9 else None


__all__ = ["DecodedFrame", "VideoInfo", "VideoSource", "VIDEO_DEMUXERS", "scaled_size"]
