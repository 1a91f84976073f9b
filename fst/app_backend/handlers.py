"""What the app's tabs call: stylize, colorize and the webcam stream, with user-facing errors."""
from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import FstError
from ..mixing import stylize_mix
from ..paths import models_dir
from ..sheet import expand, render_sheet
from ..temporal import temporal_blend
from .config import AppSettings, device_summary
from .errors import AppError
from .pacing import ResolutionGovernor
from .registry import ModelRegistry, Progress
from .uploads import check_integer, check_number, decode_upload, downscale, downscale_to_pixels, is_empty_upload, is_monochrome

logger = logging.getLogger("fst.app")

TILE = 1024                            # stylize outputs with a side above TILE_ABOVE in tiles of this size
TILE_ABOVE = 1280
#: Brush sizes the app offers (fst.brush allows up to 8), and the fine detail put back above 1.
MAX_APP_STYLE_SCALE = 4.0
ARBITRARY_WEBCAM_SIDE = 256            # any-painting webcam frames on CPU: at most this size (longer side)
ARBITRARY_WEBCAM_LEVELS = 2            # ... through the finest two levels only (about 2x faster)
BRUSH_DETAIL = 0.5



@dataclasses.dataclass
class Result:
    """A before/after pair of HxWx3 uint8 arrays of the same size, plus notes for the user."""

    before: np.ndarray
    after: np.ndarray
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class WebcamSession:
    """Per-session streaming state of the webcam tab.

    Frames styled and skipped, smoothed frames per second and latency, the previous styled
    frame with the key of the choice that made it (``style|blend_with|network``, or
    ``painting|<upload>`` for an uploaded painting: the temporal blend only mixes frames of
    one choice, and moving the mix keeps the key), the network that styled the last frame,
    and the uploaded painting's statistics (computed once per upload).
    """

    frames: int = 0
    skipped: int = 0              # frames that could not be decoded
    fps: float = 0.0              # exponential moving averages
    latency_ms: float = 0.0
    last_frame_at: float | None = None
    previous: np.ndarray | None = dataclasses.field(default=None, repr=False)
    previous_style: str | None = None   # the choice's key of ``previous`` (see above)
    network: str = ""   # the network that styled the last frame, e.g. "starry_night_rt"
    painting: tuple[str, Any] | None = dataclasses.field(default=None, repr=False)   # (upload key, its statistics)
    side: int = 0       # the longer side the last frame was styled at
    governor: ResolutionGovernor | None = None   # set while the resolution adapts to the frame rate

    def summary(self) -> str:
        """E.g. ``starry_night_rt · 12.3 fps · 41 ms per frame · 480 px (adaptive, 15 fps target) · 250 frames``."""
        text = f"{self.fps:.1f} fps · {self.latency_ms:.0f} ms per frame"
        if self.side:
            text += f" · {self.side} px" + (f" (adaptive, {self.governor.target_fps:g} fps target)"
                                            if self.governor else "")
        text = f"{text} · {self.frames} frames"
        text = f"{self.network} · {text}" if self.network else text
        return text + (f" · {self.skipped} skipped" if self.skipped else "")


WEBCAM_NETWORKS = ("auto", "webcam", "full")


class AppBackend:
    """What the app's tabs call; raises FstError subclasses with user-facing messages."""

    def __init__(self, registry: ModelRegistry | None = None, settings: AppSettings | None = None):
        self.registry = registry or ModelRegistry()
        self.device = self.registry.device
        self.settings = settings or AppSettings.from_env(self.device)
        # Networks are loaded (from the Hub too) before a compute slot is taken, so a slow or
        # failing Hub download never delays the requests of other users.
        self.compute_slots = threading.BoundedSemaphore(self.settings.concurrency)

    # ------------------------------------------------------------------ image tab
    def stylize(self, image: Any, style: Any, strength: Any = 1.0, max_side: Any = 1024,
                preserve_colors: Any = False, style_scale: Any = 1.0, blend_with: Any = "", mix: Any = 0.0,
                style_image: Any = None, progress: Progress | None = None) -> Result:
        """Stylize one upload; the result's longer side is at most ``max_side``; strokes are
        ``style_scale`` times the network's own size. With ``blend_with`` (another style) and
        ``mix`` > 0 the two styles are mixed ``1 - mix : mix`` (see :func:`fst.mixing.stylize_mix`).
        With ``style_image`` (an uploaded painting) that painting is the style instead, through
        the any-painting network (:mod:`fst.arbitrary`)."""
        strength = check_number("strength", strength, 0.0, 1.0)
        style_scale = check_number("brush size", style_scale, 1.0, MAX_APP_STYLE_SCALE)
        max_side = check_integer("output size", max_side, 64, self.settings.max_side)
        mix = check_number("mix", mix, 0.0, 1.0)
        painting = None if is_empty_upload(style_image) else decode_upload(style_image, what="painting")
        if painting is None:
            model = self.registry.load_style(style, progress=progress)
            second = self._second_style(blend_with, mix, "full", progress)
        else:
            model = self.registry.load_arbitrary(progress)
        picture = decode_upload(image)
        notes = []
        if max(picture.size) > max_side:
            notes.append(f"Downscaled from {picture.width}x{picture.height} to at most {max_side} px; "
                         "raise the output size for more detail.")
            picture = downscale(picture, max_side)
        content = np.asarray(picture)
        tile = TILE if max(picture.size) > TILE_ABOVE else None
        if painting is not None:
            with self.compute_slots:
                styled = model.stylize(content, style=painting, strength=strength,
                                       preserve_color=bool(preserve_colors), tile=tile, style_scale=style_scale)
            return Result(content, styled, notes + ["Styled with your painting (the style list and mix are "
                                                    "not used while a painting is uploaded)."])
        with self.compute_slots:
            styled = stylize_mix(model, second, mix, content, strength=strength, preserve_color=bool(preserve_colors),
                                 tile=tile, style_scale=style_scale, detail=BRUSH_DETAIL if style_scale > 1 else 0.0)
        return Result(content, styled, notes)

    def _second_style(self, blend_with: Any, mix: float, variant: str, progress: Progress | None = None) -> Any:
        """The network of the style to mix in, or None when there is none (no style, or mix 0)."""
        if blend_with is None or (isinstance(blend_with, str) and not blend_with.strip()):
            return None
        if not isinstance(blend_with, str):
            raise AppError("blend_with must be a string: a style from the list, a Hub repo id, or '' for none")
        return self.registry.load_style(blend_with, variant=variant, progress=progress) if mix > 0 else None

    # ------------------------------------------------------------------ all styles
    def sheet(self, image: Any, cell: int = 192, progress: Progress | None = None) -> tuple[np.ndarray, list[str]]:
        """The upload in every style on offer (catalogue styles, then Hub networks already loaded),
        as one labelled grid (:mod:`fst.sheet`); networks that fail to load are left out, with a note."""
        picture = decode_upload(image)
        items, notes = [], []
        for option in self.registry.styles():
            if option.source == "hub" and ("style", option.key) not in self.registry.cache:
                continue   # listed by Hub discovery but never used: not downloaded for the sheet
            try:
                items += expand(option.label, self.registry.load_style(option.key))
            except FstError as exc:
                notes.append(f"Left out {option.label}: {exc}")
        if not items:
            raise AppError("No style network could be loaded for the sheet.")

        def report(done: int, total: int, label: str) -> None:
            if progress is not None:
                progress(done / total, f"{label} ({done + 1} of {total})")

        with self.compute_slots:
            sheet = render_sheet(picture, items, cell=cell, progress=report)
        return np.asarray(sheet), notes

    # ------------------------------------------------------------------ colorization tab
    def colorize(self, image: Any, recolor: Any = False, then_style: Any = None, strength: Any = 1.0,
                 progress: Progress | None = None) -> Result:
        """Colorize a black-and-white photo at full resolution, optionally stylizing it afterwards."""
        strength = check_number("strength", strength, 0.0, 1.0)
        colorizer = self.registry.load_colorizer(progress)
        style_model = self.registry.load_style(then_style, progress=progress) if then_style else None
        picture = decode_upload(image)
        notes = []
        limit = self.settings.colorize_max_pixels
        if picture.width * picture.height > limit:
            original = f"{picture.width}x{picture.height}"
            picture = downscale_to_pixels(picture, limit)
            notes.append(f"Downscaled from {original} to {picture.width}x{picture.height} "
                         f"(the limit is {limit / 1e6:g} Mpx).")
        source = np.asarray(picture)
        if not recolor and not is_monochrome(source):
            raise AppError("This photo already has colours. Tick “Recolor a colour photo” to replace them "
                           "with predicted ones, or upload a black-and-white photo.")
        if progress is not None:
            progress(0.5, "Colorizing…")
        with self.compute_slots:
            colour = colorizer.colorize(source)
            if style_model is not None:
                tile = TILE if max(picture.size) > TILE_ABOVE else None
                colour = style_model.stylize(colour, strength=strength, tile=tile)
        return Result(source, colour, notes)

    # ------------------------------------------------------------------ webcam tab
    def webcam_network(self, choice: str) -> str:
        """``auto`` picks the style's webcam network on CPU and the full one on GPU."""
        if choice not in WEBCAM_NETWORKS:
            raise AppError(f"network must be one of {', '.join(WEBCAM_NETWORKS)}")
        if choice == "auto":
            return "full" if self.device.type == "cuda" else "webcam"
        return choice

    def webcam_frame(self, frame: Any, style: Any, strength: Any = 1.0, resolution: Any = 320,
                     blend: Any = 0.0, network: str = "auto", session: WebcamSession | None = None,
                     style_scale: Any = 1.0, blend_with: Any = "", mix: Any = 0.0, style_image: Any = None,
                     adapt: Any = False) -> tuple[np.ndarray | None, WebcamSession]:
        """Stylize one webcam frame. Returns (styled frame or None to skip it, session).

        ``resolution`` is the longer side frames are styled at; with ``adapt`` it is a ceiling, and
        the session picks the largest side that keeps the settings' webcam frame rate
        (:class:`~fst.app_backend.pacing.ResolutionGovernor`).

        ``blend_with`` and ``mix`` mix in a second style as in :meth:`stylize`: two styles of one
        multi-style network switch and mix at no cost (one network, loaded once). With
        ``style_image`` (an uploaded painting) the any-painting network styles the frames, on CPU
        at most ARBITRARY_WEBCAM_SIDE px through its finest ARBITRARY_WEBCAM_LEVELS levels; the
        painting is decoded once per session. Empty or
        undecodable frames are counted and skipped; the stream goes on.
        """
        session = session if isinstance(session, WebcamSession) else WebcamSession()
        started = time.perf_counter()
        strength = check_number("strength", strength, 0.0, 1.0)
        resolution = check_integer("resolution", resolution, 64, self.settings.max_side)
        blend = check_number("smoothing", blend, 0.0, 0.95)
        style_scale = check_number("brush size", style_scale, 1.0, MAX_APP_STYLE_SCALE)
        mix = check_number("mix", mix, 0.0, 1.0)
        if is_empty_upload(style_image):
            variant = self.webcam_network(network)
            model = self.registry.load_style(style, variant=variant)
            second = self._second_style(blend_with, mix, variant)
            key = f"{style}|{blend_with}|{network}"   # a new pair restarts the smoothing; moving the mix does not
            network_name = self.registry.resolve_style(style, variant)[0]
            run = functools.partial(stylize_mix, model, second, mix, strength=strength, style_scale=style_scale)
        else:
            painting = self._session_painting(style_image, session)
            arbitrary = self.registry.load_arbitrary()
            levels = None
            if self.device.type != "cuda":
                resolution = min(resolution, ARBITRARY_WEBCAM_SIDE)
                levels = min(ARBITRARY_WEBCAM_LEVELS, len(arbitrary.config.levels))
            key, network_name = f"painting|{session.painting[0]}", "any painting"
            run = functools.partial(arbitrary.stylize, style=painting, strength=strength, style_scale=style_scale,
                                    levels=levels)
        if bool(adapt):
            session.governor = session.governor or ResolutionGovernor(self.settings.webcam_fps)
            side = session.governor.next_side(resolution, key)
        else:
            session.governor, side = None, resolution
        try:
            picture = decode_upload(frame)
        except FstError as exc:
            session.skipped += 1
            logger.debug("webcam frame skipped: %s", exc)
            return None, session
        content = np.asarray(downscale(picture, side))
        styling_started = time.perf_counter()
        styled = run(content)
        if session.governor is not None:
            session.governor.record(time.perf_counter() - styling_started, *content.shape[:2],
                                    camera_side=max(picture.size), ceiling=resolution)
        session.side = max(content.shape[:2])
        previous = session.previous if session.previous_style == key else None
        styled = temporal_blend(styled, previous, blend)
        session.previous, session.previous_style, session.network = styled, key, network_name
        now = time.perf_counter()
        latency = (now - started) * 1000
        session.latency_ms = latency if session.frames == 0 else 0.8 * session.latency_ms + 0.2 * latency
        if session.last_frame_at is not None:
            rate = 1.0 / max(now - session.last_frame_at, 1e-3)
            session.fps = rate if session.fps == 0 else 0.8 * session.fps + 0.2 * rate
        session.last_frame_at = now
        session.frames += 1
        return styled, session

    def _session_painting(self, upload: Any, session: WebcamSession) -> Any:
        """The statistics of the uploaded painting, decoded and computed once per session and upload."""
        key = upload.get("path") if isinstance(upload, dict) else upload if isinstance(upload, str) else None
        if key is None or session.painting is None or session.painting[0] != key:
            stats = self.registry.load_arbitrary().style_statistics(decode_upload(upload, what="painting"))
            session.painting = (str(key or id(upload)), stats)
        return session.painting[1]

    # ------------------------------------------------------------------ start-up
    def warm_up(self) -> None:
        """Load the first catalogue style and run it once (CUDA kernels, caches); errors are logged."""
        styles = self.registry.catalogue_styles()
        if not styles:
            logger.info("no embedded styles to warm up (catalogue empty in %s)", models_dir())
            return
        try:
            started = time.perf_counter()
            size = 256 if self.device.type == "cuda" else 64
            dummy = np.zeros((size, size, 3), np.uint8)
            for variant in {"full", self.webcam_network("auto")}:
                self.registry.load_style(styles[0].key, variant=variant).stylize(dummy)
            logger.info("warm-up on %s took %.2f s", self.device, time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - a broken default must not stop the app
            logger.exception("warm-up failed")

    def footer(self) -> str:
        """The footer line: device, library versions."""
        return f"Running on {device_summary(self.device)} · fst {__version__} · torch {torch.__version__}"
