"""Writing the result: H.264 (yuv420p, BT.709) in MP4 with the source's timing, rotation and audio.

The file is written under a temporary name next to the output and renamed at the end
(:func:`atomic_output`), so a run that fails or is interrupted never leaves a
half-written file under the output name.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import FstError

logger = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov")
REMUX_AUDIO = ("aac", "mp3")
"""Audio codecs copied as they are (MP4 carries them and browsers play them); others become AAC."""
AUDIO_BITRATE = 160_000


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds.

    On any exception (or KeyboardInterrupt) the temporary file is deleted and ``path``
    is left as it was.
    """
    target = Path(path)
    if target.suffix.lower() not in OUTPUT_SUFFIXES:
        raise FstError(f"output {target.name!r} must end in .mp4 (an H.264 MP4 video is written)")
    if target.is_dir():
        raise FstError(f"output {target} is a folder; give a file name such as {target / 'styled.mp4'}")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.partial{target.suffix}")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


class VideoWriter:
    """An MP4 being written: H.264 video frames at the source's timestamps, and its audio.

    Video frames are RGB arrays of one size (odd sizes are padded by one pixel to even:
    yuv420p needs it). Audio packets of ``audio_source`` are copied for AAC/MP3 and
    re-encoded to AAC otherwise; ``audio_offset`` (seconds) is the source time of the
    first video frame, so audio and video stay in sync when a clip is cut.
    """

    def __init__(self, path: Path, size: tuple[int, int], time_base: Fraction, *, fps: Fraction | None = None,
                 display_matrix: tuple[int, ...] | None = None, audio_source: Any = None, audio_offset: float = 0.0,
                 audio_end: float | None = None, crf: int = 20, preset: str = "veryfast"):
        import av

        width, height = self.size = size
        self.time_base = time_base
        self.audio_offset, self.audio_end = audio_offset, audio_end
        self.frames = 0
        self.dropped_audio = 0   # damaged audio packets left out
        self._container = av.open(str(path), mode="w", format="mp4", container_options={"movflags": "+faststart"})
        try:
            stream = self._container.add_stream("libx264", rate=fps or Fraction(25),
                                                options={"crf": str(crf), "preset": preset})
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.time_base = time_base
            codec = stream.codec_context
            codec.time_base = time_base
            codec.colorspace = codec.color_primaries = codec.color_trc = 1   # BT.709, as converted below
            codec.color_range = 1                                            # limited ("TV") range
            if display_matrix is not None:
                stream.set_display_matrix(display_matrix)
            self._video = stream
            self._audio_in, self._audio_out, self._remux = audio_source, None, False
            if audio_source is not None:
                self._add_audio(audio_source)
        except BaseException:
            self._container.close()
            raise

    def _add_audio(self, source: Any) -> None:
        codec = source.codec_context
        if codec.name in REMUX_AUDIO:
            self._audio_out = self._container.add_stream_from_template(source)
            self._remux = True
        else:
            rate = codec.sample_rate if codec.sample_rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000) \
                else 48000
            self._audio_out = self._container.add_stream("aac", rate=rate)
            self._audio_out.codec_context.bit_rate = AUDIO_BITRATE
            if codec.layout is not None and codec.layout.nb_channels <= 2:
                self._audio_out.codec_context.layout = codec.layout.name

    @property
    def encoded_size(self) -> tuple[int, int]:
        """(width, height) of the video in the file: the frames' size, rounded up to even."""
        return self._video.width, self._video.height

    @property
    def remuxed_audio(self) -> bool:
        """True when the audio is copied as it is, False when it is re-encoded (or absent)."""
        return self._remux

    def write(self, image: np.ndarray, pts: int) -> None:
        """Encode one HxWx3 uint8 RGB frame at ``pts`` (in the source's time base, strictly increasing)."""
        import av
        from av.video.reformatter import ColorRange, Colorspace

        height, width = image.shape[:2]
        if (width, height) != self.size:
            raise ValueError(f"frame of {width}x{height} in a video of {self.size[0]}x{self.size[1]}")
        if width % 2 or height % 2:
            image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
        frame.pts, frame.time_base = pts, self.time_base
        self._container.mux(self._video.encode(frame))
        self.frames += 1

    def write_audio(self, packet: Any) -> None:
        """Copy or re-encode one audio packet of the source; parts outside the kept range are dropped."""
        if self._audio_out is None or packet.pts is None:
            return
        seconds = float(packet.pts * packet.time_base)
        if seconds < self.audio_offset - 1e-3 or (self.audio_end is not None and seconds >= self.audio_end):
            return
        import av

        try:
            if self._remux:
                shift = round(self.audio_offset / packet.time_base)
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
                packet.stream = self._audio_out
                self._container.mux(packet)
                return
            for frame in packet.decode():
                frame.pts = None   # the encoder numbers the samples from 0: the first video frame's time
                self._container.mux(self._audio_out.encode(frame))
        except av.FFmpegError as error:   # a damaged audio packet costs a few ms of sound, not the video
            self.dropped_audio += 1
            if self.dropped_audio == 1:
                logger.warning("audio packet at %.2f s dropped (%s); further ones are dropped silently",
                               seconds, error)

    def close(self) -> None:
        """Flush the encoders and finish the file (moov atom at the front, for streaming)."""
        if self._container is None:
            return
        try:
            self._container.mux(self._video.encode(None))
            if self._audio_out is not None and not self._remux:
                self._container.mux(self._audio_out.encode(None))
        finally:
            self.abort()

    def abort(self) -> None:
        """Close the file without flushing (after an error; the caller deletes it)."""
        if self._container is not None:
            container, self._container = self._container, None
            container.close()


__all__ = ["OUTPUT_SUFFIXES", "VideoWriter", "atomic_output"]
