"""The app's Video tab and ``/video`` endpoint, without Gradio: checks, limits, running :mod:`fst.video`.

Limits come from the environment (``FST_VIDEO_MAX_SECONDS``, ``FST_VIDEO_MAX_PIXELS``,
``FST_VIDEO_MAX_FPS``, ``FST_VIDEO_MAX_STREAMS``, ``FST_VIDEO_MAX_BYTES``) over the app's
defaults (:func:`app_video_limits`, stricter than the library's) and are checked from the
upload's header before any frame is decoded. A video job holds one of the backend's
compute slots for its whole run, like an image does.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from .app_backend import MAX_APP_STYLE_SCALE, AppBackend, AppError, Progress, check_integer, check_number
from .video import DEFAULT_STABILITY, VideoLimits, VideoOptions, VideoReport, process_video

logger = logging.getLogger("fst.app")

RESULTS_FOLDER = "fst-video-results"
RESULT_MAX_AGE = 600          # seconds a result stays in our folder (Gradio serves its own copy)
DEFAULT_MAX_SIDE = {"cpu": 480, "cuda": 1280}


def app_video_limits(device_type: str) -> VideoLimits:
    """The app's limits: short clips on CPU, longer ones on a GPU; ``FST_VIDEO_*`` variables override them."""
    if device_type == "cuda":
        defaults = VideoLimits(max_seconds=300, max_pixels=3840 * 2160, max_fps=120, max_streams=16,
                               max_bytes=500_000_000)
    else:
        defaults = VideoLimits(max_seconds=30, max_pixels=1920 * 1080, max_fps=60, max_streams=16,
                               max_bytes=50_000_000)
    return VideoLimits.from_env(defaults)


@dataclasses.dataclass
class VideoResult:
    """The styled video (an MP4 file) and what to tell the user."""

    path: Path
    report: VideoReport
    notes: list[str]


class VideoService:
    """Runs the Video tab's requests on a backend's models and compute slots."""

    def __init__(self, backend: AppBackend, folder: Path | None = None):
        self.backend = backend
        self.limits = app_video_limits(backend.device.type)
        self.default_max_side = min(DEFAULT_MAX_SIDE.get(backend.device.type, 480), backend.settings.max_side)
        self.folder = folder or Path(tempfile.gettempdir()) / RESULTS_FOLDER

    def describe_limits(self) -> str:
        """One sentence for the tab."""
        limits = self.limits
        return (f"Clips up to {limits.max_seconds:g} s, {limits.max_bytes / 1e6:.0f} MB, "
                f"{limits.max_fps:g} frames per second and {limits.max_pixels / 1e6:.1f} Mpx frames.")

    def run(self, video: Any, style: Any = "", colorize: Any = False, strength: Any = 1.0,
            max_side: Any = None, stability: Any = DEFAULT_STABILITY, style_scale: Any = 1.0,
            progress: Progress | None = None) -> VideoResult:
        """Stylize (``style``, "" for none) and/or colorize (``colorize``) an uploaded video; strokes are
        ``style_scale`` times the network's own size (as in the image tab)."""
        strength = check_number("strength", strength, 0.0, 1.0)
        style_scale = check_number("brush size", style_scale, 1.0, MAX_APP_STYLE_SCALE)
        max_side = self.default_max_side if max_side is None else check_integer("output size", max_side, 64,
                                                                                self.backend.settings.max_side)
        stability = check_number("flicker reduction", stability, 0.0, 0.95)
        source = _upload_path(video)
        if not isinstance(style, str):
            raise AppError("style must be a string: a style from the list, a Hub repo id, or '' for none")
        if not style.strip() and not colorize:
            raise AppError("Choose a style, tick “Colorize”, or both.")
        colorizer = self.backend.registry.load_colorizer(progress) if colorize else None
        model = self.backend.registry.load_style(style, progress=progress) if style.strip() else None
        self.folder.mkdir(parents=True, exist_ok=True)
        _prune(self.folder, RESULT_MAX_AGE)
        output = self.folder / f"{Path(source).stem[:40]}-{secrets.token_hex(4)}.mp4"
        options = VideoOptions(strength=strength, max_side=max_side, stability=stability, style_scale=style_scale)

        def report_progress(done: int, total: int | None) -> None:
            if progress is not None:
                fraction = done / total if total else 0.0
                progress(min(fraction, 1.0), f"Frame {done}" + (f" of about {total}" if total else ""))

        if progress is not None:
            progress(0.0, "Waiting for a free slot…")
        with self.backend.compute_slots:
            report = process_video(source, output, style=model, colorizer=colorizer, options=options,
                                   limits=self.limits, progress=report_progress, show_progress=False)
        notes = [f"{report.frames} frames of {report.width}x{report.height} in {report.seconds:.0f} s"
                 + (f", {report.cuts} cut{'s' if report.cuts != 1 else ''} detected" if report.cuts else "")
                 + (", audio kept" if report.audio else "") + "."]
        return VideoResult(output, report, notes)


def _upload_path(payload: Any) -> str:
    """The file of Gradio's upload payload (``{"path": ...}``) or a path string."""
    path = payload.get("path") if isinstance(payload, dict) else payload
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise AppError("No video: upload a video file (MP4, MOV, WebM ...) first.")
    return path


def _prune(folder: Path, max_age: float) -> None:
    """Delete results older than ``max_age`` seconds (Gradio has long made its own copy)."""
    now = time.time()
    for path in folder.glob("*.mp4"):
        try:
            if now - path.stat().st_mtime > max_age:
                path.unlink()
        except OSError as exc:
            logger.debug("could not prune %s: %s", path, exc)


__all__ = ["VideoResult", "VideoService", "app_video_limits"]
