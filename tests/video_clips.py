"""Small generated video clips (PyAV) for the video tests, the app tests and the video benchmark.

Nothing comes from outside: every clip is written here, a few frames of a few dozen
pixels unless a caller asks for more.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

AUDIO_RATE = 16000


def textured_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture with some edges (HxWx3 uint8): trackable, and it styles visibly."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 3, width // 8 + 3, 3)).astype(np.float32)
    ys = np.linspace(0, coarse.shape[0] - 2.001, height)
    xs = np.linspace(0, coarse.shape[1] - 2.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    image = top * (1 - fy) + bottom * fy
    image[:, width // 3: width // 3 + 2] = 255      # a few sharp lines
    image[height // 2: height // 2 + 2, :] = 0
    return np.clip(image, 0, 255).astype(np.uint8)


def panning_frames(count: int, height: int = 48, width: int = 64, step: tuple[int, int] = (2, 1),
                   seed: int = 0, scene: np.ndarray | None = None) -> list[np.ndarray]:
    """``count`` crops of a larger scene moving by ``step`` = (dx, dy) pixels per frame: content moves
    by (-dx, -dy) on screen (the camera pans right/down). A given ``scene`` must be at least
    :func:`scene_size` large."""
    dx, dy = step
    margin_x, margin_y = abs(dx) * count + 1, abs(dy) * count + 1
    if scene is None:
        scene = textured_frame(height + 2 * margin_y, width + 2 * margin_x, seed)
    if scene.shape[:2] < scene_size(count, height, width, step)[::-1]:
        raise ValueError(f"scene of {scene.shape[1]}x{scene.shape[0]} too small for {count} frames")
    frames = []
    for index in range(count):
        x = margin_x + dx * index
        y = margin_y + dy * index
        frames.append(np.ascontiguousarray(scene[y:y + height, x:x + width]))
    return frames


def scene_size(count: int, height: int, width: int, step: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the scene :func:`panning_frames` needs."""
    return width + 2 * (abs(step[0]) * count + 1), height + 2 * (abs(step[1]) * count + 1)


def write_clip(path: Path, frames: Iterable[np.ndarray], *, fps: int = 25, codec: str = "libx264",
               pix_fmt: str = "yuv420p", container: str | None = None, audio: str | None = None,
               audio_seconds: float | None = None, rotation: int | None = None,
               pts: Sequence[int] | None = None, time_base: Fraction | None = None,
               options: dict[str, str] | None = None) -> Path:
    """Encode RGB frames (HxWx3 uint8, or HxWx4 with alpha for pixel formats that keep it).

    ``audio`` is an audio codec name (``"aac"``, ``"pcm_s16le"`` ...): a 440 Hz tone as long as
    the video (or ``audio_seconds``). ``pts``/``time_base`` give each frame's timestamp
    (variable frame rate); ``rotation`` sets the display matrix (counter-clockwise degrees).
    """
    import av

    frames = list(frames)
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w", format=container) as output:
        video = output.add_stream(codec, rate=fps, options=options or {})
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            video.time_base = video.codec_context.time_base = time_base
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = output.add_stream(audio, rate=AUDIO_RATE) if audio else None
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgba" if image.shape[2] == 4 else "rgb24")
            frame.pts = pts[index] if pts is not None else index
            if time_base is not None:
                frame.time_base = time_base
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        if sound is not None:
            seconds = audio_seconds if audio_seconds is not None else len(frames) / fps
            samples = int(seconds * AUDIO_RATE)
            tone = (np.sin(np.arange(samples) * 2 * np.pi * 440 / AUDIO_RATE) * 0.3 * 32767).astype(np.int16)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="s16", layout="mono")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, start
                output.mux(sound.encode(chunk))
            output.mux(sound.encode(None))
    return path


def read_clip(path: Path) -> dict:
    """What a player sees in a file: video codec, pixel format, size, frames (RGB), their times,
    rotation, and the audio stream's codec and duration."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times, rotation = [], [], 0
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.time))
            rotation = frame.rotation
        info = {"codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                "size": (stream.width, stream.height), "frames": frames, "times": times, "rotation": rotation,
                "format": container.format.name, "audio": None, "audio_seconds": 0.0}
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            info["audio"] = audio.codec_context.name
            info["audio_seconds"] = sum(f.samples for f in container.decode(audio)) / audio.codec_context.sample_rate
    return info


# --------------------------------------------------------------------------- bad inputs


def zero_frame_video(path: Path) -> Path:
    """A Matroska file whose header declares a video stream that has no frames."""
    import av

    with av.open(str(path), mode="w", format="matroska") as output:
        stream = output.add_stream("libx264", rate=25)
        stream.width, stream.height = 64, 48
        output.start_encoding()
    return path


def audio_only(path: Path) -> Path:
    """An M4A file: one AAC stream, no video."""
    import av

    with av.open(str(path), mode="w", format="mp4") as output:
        stream = output.add_stream("aac", rate=AUDIO_RATE)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, 0
        output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


def many_streams(path: Path, count: int) -> Path:
    """A one-frame Matroska video followed by ``count`` tiny AAC streams (PyAV writes up to 999)."""
    import av

    with av.open(str(path), mode="w", format="matroska") as output:
        video = output.add_stream("libx264", rate=25)
        video.width, video.height = 32, 32
        sounds = [output.add_stream("aac", rate=8000) for _ in range(count)]
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        frame.pts = 0
        output.mux(video.encode(frame))
        output.mux(video.encode(None))
        for sound in sounds:
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 8000, 0
            output.mux(sound.encode(chunk))
            output.mux(sound.encode(None))
    return path


def y4m_header_only(path: Path, width: int, height: int) -> Path:
    """A YUV4MPEG2 file whose header claims ``width`` x ``height`` frames, followed by a few bytes."""
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + b"\x80" * 4096)
    return path
