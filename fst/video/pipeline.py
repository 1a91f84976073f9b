"""Stylize and/or colorize a whole video: decode -> process (stabilized over time) -> encode, streamed.

Three threads (:mod:`fst.video.stages`): decoding and motion estimation, the networks,
stabilization and encoding. Memory stays bounded for any length: a few frames (plus the
previous output and some audio packets) are in flight at a time.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import torch

from ..brush import check_style_scale
from ..errors import FstError
from ..inference import check_optional_size, check_unit_interval, from_uint8_array, to_uint8_array
from ..temporal import Motion, MotionTracker, Stabilizer
from .limits import VideoLimits
from .sink import VideoWriter, atomic_output
from .source import DecodedFrame, VideoSource
from .stages import ReadAhead, WriteBehind

if TYPE_CHECKING:
    from ..colorizer import Colorizer
    from ..faststyle import FastStyle

logger = logging.getLogger(__name__)

DEFAULT_STABILITY = 0.6
MAX_PENDING_AUDIO = 4096   # audio packets held until the first video frame is ready

ProgressCallback = Callable[[int, "int | None"], None]


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """How to process a video.

    Args:
        strength: style strength, 0 (the frame) .. 1 (full style).
        preserve_color: keep each frame's colours (luminance-only style transfer).
        style_scale: brush size (see :meth:`fst.FastStyle.stylize`): 2 paints strokes twice as large.
        max_side: downscale frames so the longer side is at most this (faster); the
            output has that size.
        start, end: the part to process, in seconds of the source (``end=None``: to the end).
        stability: weight of the previous output, warped by the estimated motion, in each
            output frame where the motion is trusted; 0 processes every frame on its own.
        crf, preset: H.264 quality (lower crf is better, 18-23 is typical) and encoder speed.
    """

    strength: float = 1.0
    preserve_color: bool = False
    style_scale: float = 1.0
    max_side: int | None = None
    start: float = 0.0
    end: float | None = None
    stability: float = DEFAULT_STABILITY
    crf: int = 20
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        check_unit_interval("strength", self.strength)
        check_style_scale(self.style_scale)
        check_optional_size("max_side", self.max_side, 16)
        if isinstance(self.stability, bool) or not isinstance(self.stability, (int, float)) \
                or not 0.0 <= self.stability <= 0.95:
            raise ValueError(f"stability must be a number in [0, 0.95], got {self.stability!r}")
        if isinstance(self.crf, bool) or not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be an integer in 0..51, got {self.crf!r}")
        presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
        if self.preset not in presets:
            raise ValueError(f"preset must be one of {', '.join(presets)}; got {self.preset!r}")


@dataclasses.dataclass(frozen=True)
class VideoReport:
    """What :func:`process_video` wrote."""

    output: Path
    frames: int
    width: int
    height: int
    seconds: float       # wall-clock time taken
    cuts: int            # shot changes detected (the temporal blend restarted there)
    audio: str | None    # "aac (copied)", "pcm_s16le -> aac" or None

    @property
    def fps(self) -> float:
        """Frames processed per second of wall-clock time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class FrameProcessor:
    """Colorizes and/or stylizes the consecutive frames of one video, stabilized over time.

    Both steps are stabilized with the same motion (:class:`fst.temporal.MotionTracker`
    on the input frames): the colours (a*b*) and the styled frames are each blended
    with their warped previous value (:class:`fst.temporal.Stabilizer`). Cuts restart
    both blends, so one shot's colours never bleed into the next.

    Calling it runs the three steps in turn; :func:`process_video` runs :meth:`track`,
    :meth:`process` and :meth:`stabilize` in three threads, one frame after the other.
    """

    def __init__(self, style: "FastStyle | None" = None, colorizer: "Colorizer | None" = None, *,
                 strength: float = 1.0, preserve_color: bool = False, style_scale: float = 1.0,
                 stability: float = DEFAULT_STABILITY):
        if style is None and colorizer is None:
            raise ValueError("give a style network, a colorizer, or both")
        self.style, self.colorizer = style, colorizer
        self._style_options = dict(strength=strength, preserve_color=preserve_color)
        if style_scale != 1.0:
            self._style_options["style_scale"] = style_scale
        self.tracker = MotionTracker() if stability > 0 else None
        self._colours = Stabilizer(stability)
        self._styled = Stabilizer(stability, keep_detail=True)
        if colorizer is not None and colorizer.training:
            colorizer.eval()

    @property
    def cuts(self) -> int:
        """Shot changes detected so far."""
        return self.tracker.cuts if self.tracker is not None else 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """One HxWx3 uint8 frame in, the processed frame (same size) out."""
        motion = self.track(frame)
        return self.stabilize(self.process(frame, motion), motion)

    @torch.inference_mode()
    def track(self, frame: np.ndarray) -> Motion | None:
        """Motion from the previous input frame (None: first frame, cut, or stabilization off)."""
        return self.tracker.track(frame) if self.tracker is not None else None

    def process(self, frame: np.ndarray, motion: Motion | None) -> np.ndarray:
        """Colorize (colours stabilized) and stylize one frame; the styled frame is not stabilized yet."""
        image = self._colorize(frame, motion) if self.colorizer is not None else frame
        if self.style is not None:
            image = self.style.stylize(image, **self._style_options)
        return image

    @torch.inference_mode()
    def stabilize(self, image: np.ndarray, motion: Motion | None) -> np.ndarray:
        """Blend the styled frame with the previous one moved along ``motion``."""
        return self._styled(image, motion) if self.style is not None else image

    @torch.inference_mode()
    def _colorize(self, frame: np.ndarray, motion: Motion | None) -> np.ndarray:
        from ..color import lab_to_rgb_keep_lightness, merge_lab, rgb_to_gray_l

        device = self.colorizer.device
        lightness = rgb_to_gray_l(from_uint8_array(frame).to(device))
        ab = self.colorizer.predict_ab(lightness)[0].permute(1, 2, 0).cpu().numpy()
        ab = torch.from_numpy(np.ascontiguousarray(self._colours(ab, motion))).permute(2, 0, 1).unsqueeze(0)
        return to_uint8_array(lab_to_rgb_keep_lightness(merge_lab(lightness, ab.to(device))).cpu())


@dataclasses.dataclass
class _Frame:
    """A frame on its way through the threads."""

    source: DecodedFrame
    image: np.ndarray            # upright
    motion: Motion | None
    turns: int                   # quarter turns that made it upright


class _Output:
    """The encoding end, run in its own thread: stabilize, turn back, encode; audio as it comes."""

    def __init__(self, path: Path, processor: FrameProcessor, video: VideoSource, options: VideoOptions):
        self.path, self.processor, self.video, self.options = path, processor, video, options
        self.writer: VideoWriter | None = None
        self._pending_audio: list[Any] = []

    def handle(self, item: Any) -> None:
        if not isinstance(item, _Frame):
            if self.writer is not None:
                self.writer.write_audio(item)
            elif len(self._pending_audio) < MAX_PENDING_AUDIO:
                self._pending_audio.append(item)
            return
        result = self.processor.stabilize(item.image, item.motion)
        if item.turns:
            result = np.ascontiguousarray(np.rot90(result, -item.turns))
        if self.writer is None:
            source, options = item.source, self.options
            self.writer = VideoWriter(self.path, (result.shape[1], result.shape[0]), source.time_base,
                                      fps=self.video.info.fps, display_matrix=source.display_matrix,
                                      audio_source=self.video.audio_stream, audio_offset=source.time,
                                      audio_end=options.end, crf=options.crf, preset=options.preset)
            for packet in self._pending_audio:
                self.writer.write_audio(packet)
            self._pending_audio.clear()
        self.writer.write(result, item.source.pts)


def process_video(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    style: "FastStyle | None" = None,
    colorizer: "Colorizer | None" = None,
    options: VideoOptions | None = None,
    limits: VideoLimits | None = None,
    progress: ProgressCallback | None = None,
    show_progress: bool = True,
) -> VideoReport:
    """Stylize (``style``) and/or colorize (``colorizer``; colorized first) the video ``source``
    into the H.264 MP4 ``output``, keeping its audio, timing and rotation.

    >>> model = FastStyle.from_pretrained("models/starry_night_rt")
    >>> process_video("in.mp4", "out.mp4", style=model, options=VideoOptions(max_side=640))

    ``limits`` default to :meth:`VideoLimits.from_env`. ``progress(done, total)`` is called
    after every frame (``total`` is an estimate, None when unknown); ``show_progress``
    shows a progress bar with the ETA on stderr. Raises
    :class:`fst.errors.InvalidVideoError` for unusable input; whatever happens, nothing
    but a complete video is ever left under the name ``output``.
    """
    from tqdm.auto import tqdm

    options = options or VideoOptions()
    processor = FrameProcessor(style, colorizer, strength=options.strength, preserve_color=options.preserve_color,
                               style_scale=options.style_scale, stability=options.stability)
    if Path(output).resolve() == Path(source).resolve():
        raise FstError(f"the output {output} is the input; choose another output file")
    started = time.perf_counter()
    with VideoSource(source, limits=limits, start=options.start, end=options.end) as video, \
            atomic_output(output) as temporary:
        total = video.info.frames_between(options.start, options.end)
        out = _Output(temporary, processor, video, options)
        encoder = WriteBehind(out.handle, name="fst-video-encode")
        try:
            with ReadAhead(lambda: _decoded(video, processor, options.max_side), name="fst-video-decode") as items, \
                    tqdm(total=total, unit="frame", desc=Path(source).name[:30], disable=not show_progress,
                         leave=False) as bar:
                done = 0
                for item in items:
                    if isinstance(item, _Frame):
                        item.image = processor.process(item.image, item.motion)
                        done += 1
                        bar.update(1)
                        if progress is not None:
                            progress(done, total)
                    encoder.put(item)
            encoder.finish()
            out.writer.close()
        except BaseException:
            encoder.close()
            if out.writer is not None:
                out.writer.abort()
            raise
    writer = out.writer
    audio = video.info.audio
    if audio is not None:
        audio = f"{audio} (copied)" if writer.remuxed_audio else f"{audio} -> aac"
    width, height = writer.encoded_size
    return VideoReport(Path(output), writer.frames, width, height, time.perf_counter() - started,
                       processor.cuts, audio)


def _decoded(video: VideoSource, processor: FrameProcessor, max_side: int | None) -> Iterator[Any]:
    """The decoding end, run in its own thread: frames turned upright with their motion, and audio packets."""
    for item in video.items(max_side):
        if isinstance(item, DecodedFrame):
            turns = _quarter_turns(item.rotation)
            image = np.ascontiguousarray(np.rot90(item.image, turns)) if turns else item.image
            item = _Frame(item, image, processor.track(image), turns)
        yield item


def _quarter_turns(rotation: int) -> int:
    """Counter-clockwise quarter turns that show a frame upright (0 for angles that are not multiples of 90)."""
    return (rotation // 90) % 4 if rotation % 90 == 0 else 0


__all__ = ["DEFAULT_STABILITY", "FrameProcessor", "VideoOptions", "VideoReport", "process_video"]
