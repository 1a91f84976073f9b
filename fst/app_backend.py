"""The logic behind the Gradio app (``app.py``): models, caching, input checks, error messages.

Nothing here imports Gradio, so it is unit-testable on its own. ``app.py`` only wires
these functions to components and turns :func:`user_message` into ``gr.Error``.

* :class:`ModelCache` - bounded, thread-safe LRU that loads each key once, even when
  many requests ask for it at the same time (the first one loads, the others wait).
* :class:`ModelRegistry` - the styles on offer: the embedded catalogue, networks
  found on the Hub by tag (bounded time, failures ignored), and any repo id a user
  pastes; model info read from the (untrusted) model card.
* :class:`AppBackend` - what the three tabs call: :meth:`~AppBackend.stylize`,
  :meth:`~AppBackend.colorize` and :meth:`~AppBackend.webcam_frame`.

Every upload is decoded by :mod:`fst.imageio` (format sniffed from content, size
limits, EXIF, alpha) and every result is a fresh pixel array, so nothing a user
sent is ever served back as-is.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Generic, Hashable, TypeVar

import numpy as np
import torch
from PIL import Image

from . import __version__, catalog, imageio
from .catalog import CatalogEntry, load_catalog
from .color import chroma_spread
from .errors import FstError, InvalidImageError, ModelLoadError
from .faststyle import FastStyle
from .hub import resolve_device
from . import settings
from .hub_access import check_reachable, network_errors, remember_outage
from .mixing import stylize_mix, unbind
from .model_card import MAX_CARD_BYTES, read_card_metadata
from .multistyle import STYLE_NAME
from .paths import models_dir
from .settings import env_int
from .sheet import expand, render_sheet
from .temporal import temporal_blend

logger = logging.getLogger("fst.app")

HUB_TAG = "fast-style-transfer"
THUMBNAIL_SIDE = 256
MAX_THUMBNAIL_BYTES = 4 << 20          # a Hub repo's style.jpg is fetched only below this size
MAX_THUMBNAIL_PIXELS = 25_000_000
MAX_DATA_URL_CHARS = (imageio.MAX_FILE_BYTES * 4) // 3 + 1024
TILE = 1024                            # stylize outputs with a side above TILE_ABOVE in tiles of this size
TILE_ABOVE = 1280
#: Brush sizes the app offers (fst.brush allows up to 8), and the fine detail put back above 1.
MAX_APP_STYLE_SCALE = 4.0
ARBITRARY_WEBCAM_SIDE = 256            # any-painting webcam frames on CPU: at most this size (longer side)
ARBITRARY_WEBCAM_LEVELS = 2            # ... through the finest two levels only (about 2x faster)
BRUSH_DETAIL = 0.5
MAX_CUSTOM_MODELS = 16                 # user-pasted repo ids remembered for the style lists
MAX_FAILED_MODELS = 256                # Hub ids that failed to load, remembered for $FST_HUB_RETRY_AFTER seconds
MONOCHROME_TOLERANCE = 4.0             # chroma spread (CIE Lab) below which a photo counts as black and white

Progress = Callable[[float, str], None]
T = TypeVar("T")


class AppError(FstError):
    """A problem with what the user asked for; the message is shown to them as is."""


class ColorizerUnavailable(AppError):
    """No trained colorizer is installed."""


def user_message(error: BaseException) -> str:
    """The message to show for ``error``: fst's own text, or a generic one (details go to the log)."""
    if isinstance(error, FstError):
        return str(error)
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return "The server ran out of memory for this image; choose a smaller output size and try again."
    return "Something went wrong while processing this request (the error was logged). Please try again."


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class AppSettings:
    """Serving limits (environment variables in brackets, read by :func:`fst.settings.env_int` when
    :meth:`from_env` is called); defaults depend on the device."""

    concurrency: int          # image/colorize jobs run at once [FST_CONCURRENCY]
    queue_size: int           # waiting jobs before "queue full" [FST_QUEUE_SIZE]
    webcam_sessions: int      # webcam streams served at once [FST_WEBCAM_SESSIONS]
    webcam_seconds: int       # streaming time per session [FST_WEBCAM_SECONDS]
    max_side: int             # largest output side offered by the size slider [FST_MAX_SIDE]
    cache_size: int           # networks kept in memory [FST_MODEL_CACHE]
    colorize_max_pixels: int = 16_000_000   # colorized at full resolution up to this [FST_COLORIZE_MAX_PIXELS]
    temp_ttl: int = 3600      # seconds uploads, results and webcam frames stay in Gradio's temp folder [FST_TEMP_TTL]
    hub_downloads: int = 4    # requests that may fetch a network from the Hub meanwhile [FST_HUB_DOWNLOADS]

    @property
    def request_slots(self) -> int:
        """Image and colorize requests handled at once: ``concurrency`` computing, plus up to
        ``hub_downloads`` fetching their network from the Hub outside the compute slots."""
        return self.concurrency + self.hub_downloads

    @property
    def delete_cache(self) -> tuple[int, int]:
        """``gr.Blocks(delete_cache=(every, older_than))``: temp files older than ``temp_ttl`` are deleted,
        checked every ``temp_ttl / 4`` seconds (at most every 10 minutes)."""
        return max(1, min(self.temp_ttl // 4, 600)), self.temp_ttl

    @classmethod
    def from_env(cls, device: torch.device) -> "AppSettings":
        gpu = device.type == "cuda"
        return cls(
            concurrency=env_int("FST_CONCURRENCY", 4 if gpu else 1),
            queue_size=env_int("FST_QUEUE_SIZE", 32 if gpu else 16),
            webcam_sessions=env_int("FST_WEBCAM_SESSIONS", 4 if gpu else 2),
            webcam_seconds=env_int("FST_WEBCAM_SECONDS", 120, low=5),
            max_side=env_int("FST_MAX_SIDE", 4096 if gpu else 2048, low=64),
            cache_size=env_int("FST_MODEL_CACHE", 8),
            colorize_max_pixels=env_int("FST_COLORIZE_MAX_PIXELS", 16_000_000, low=65_536),
            temp_ttl=env_int("FST_TEMP_TTL", 3600, low=2),
            hub_downloads=env_int("FST_HUB_DOWNLOADS", 4, low=0),
        )


def configure_torch(device: torch.device) -> int:
    """On CPU, leave one core to the web server (``$FST_TORCH_THREADS`` overrides); returns the thread count.

    With two cores this means one torch thread: measured on a loaded 2-core machine, a second
    thread that has to wait for the busy core makes each frame 20x slower, not 2x faster.
    """
    if device.type != "cpu":
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    threads = env_int("FST_TORCH_THREADS", max(1, cores - 1))
    torch.set_num_threads(threads)
    return threads


def device_summary(device: torch.device) -> str:
    """What the app's footer says the networks run on: on CUDA the GPU's name with how style
    networks run there (fp16 autocast, channels_last memory), e.g. ``NVIDIA H100 (CUDA, fp16,
    channels_last)``; on CPU torch's thread count (see :func:`configure_torch`), e.g. ``CPU (15 threads)``."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA, fp16, channels_last)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


# --------------------------------------------------------------------------- cache


class ModelCache(Generic[T]):
    """A bounded LRU of loaded models, safe to share between request threads.

    ``get(key)`` loads a missing key once: concurrent callers of the same key wait
    for that single load (a future per key) instead of loading it again. Failed
    loads are not cached; every waiter sees the error.
    """

    def __init__(self, loader: Callable[[Hashable], T], max_items: int = 8):
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self._loader = loader
        self.max_items = max_items
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._pending: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.loads = 0  # loader calls so far (for tests and logs)

    def get(self, key: Hashable) -> T:
        """The value for ``key``, loading it (once) when absent."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            future = self._pending.get(key)
            owner = future is None
            if owner:
                future = self._pending[key] = Future()
                self.loads += 1
        if not owner:
            return future.result()
        try:
            value = self._loader(key)
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.max_items:
                evicted, _ = self._items.popitem(last=False)
                logger.info("model cache full: dropped %s", evicted)
            del self._pending[key]
        future.set_result(value)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._items)


# --------------------------------------------------------------------------- registry


@dataclasses.dataclass(frozen=True)
class StyleOption:
    """A style on offer. ``key`` is what ``/stylize`` accepts: a catalogue name or a Hub repo id."""

    key: str
    label: str
    source: str   # "catalogue", "hub" or "custom"
    thumbnail: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)


def _is_hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def thumbnail(source: Any, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """A small re-encoded RGB array of an image file (decoded safely by fst.imageio)."""
    image = imageio.read_image(source, max_pixels=MAX_THUMBNAIL_PIXELS)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image)


class ModelRegistry:
    """The style and colorizer networks the app offers, loaded on demand into a bounded cache."""

    def __init__(
        self,
        device: str | torch.device | None = None,
        cache_size: int = 8,
        hub_limit: int = 24,
        hub_timeout: float = 8.0,
    ):
        self.device = resolve_device(device)
        self.hub_limit = hub_limit
        self.hub_timeout = hub_timeout
        self._cache: ModelCache[Any] = ModelCache(self._load, cache_size)
        self._lock = threading.Lock()
        self._hub: list[StyleOption] = []
        self._custom: OrderedDict[str, StyleOption] = OrderedDict()
        self._thumbnails: dict[tuple[str, int], np.ndarray | None] = {}
        self.hub_done = threading.Event()
        self._failed: OrderedDict[str, tuple[float, ModelLoadError]] = OrderedDict()

    # ------------------------------------------------------------------ what is on offer
    @property
    def cache(self) -> ModelCache[Any]:
        """The in-memory LRU of loaded networks."""
        return self._cache

    def catalogue_styles(self) -> list[StyleOption]:
        """Style entries of the embedded catalogue (webcam networks folded into their full entry, a
        multi-style network shown as its styles: :func:`fst.catalog.style_entries`)."""
        return [StyleOption(e.name, e.display_name, "catalogue", self._entry_thumbnail(e))
                for e in catalog.style_entries()]

    def styles(self) -> list[StyleOption]:
        """Catalogue styles, then networks found on the Hub, then repo ids users loaded."""
        options = self.catalogue_styles()
        known = {option.key for option in options} | {e.hub_id for e in load_catalog()}
        with self._lock:
            extra = [*self._hub, *self._custom.values()]
        for option in extra:
            if option.key not in known:
                known.add(option.key)
                options.append(option)
        return options

    def colorizer_entry(self) -> CatalogEntry | None:
        """The catalogue's colorizer, or None while none is installed."""
        return next((e for e in load_catalog() if e.kind == "colorizer"), None)

    def arbitrary_entry(self) -> CatalogEntry | None:
        """The catalogue's any-painting network, or None while none is installed."""
        return next((e for e in load_catalog() if e.kind == "arbitrary"), None)

    def _entry_thumbnail(self, entry: CatalogEntry) -> np.ndarray | None:
        path = entry.style_image_path
        if path is None:
            return None
        key = (str(path), path.stat().st_mtime_ns)
        if key not in self._thumbnails:
            try:
                self._thumbnails[key] = thumbnail(path)
            except FstError as exc:
                logger.warning("style image of %s unusable: %s", entry.name, exc)
                self._thumbnails[key] = None
        return self._thumbnails[key]

    # ------------------------------------------------------------------ Hub discovery
    def start_hub_discovery(self) -> threading.Thread:
        """List networks tagged ``fast-style-transfer`` on the Hub in the background."""
        thread = threading.Thread(target=self.discover_hub, name="fst-hub-discovery", daemon=True)
        thread.start()
        return thread

    def discover_hub(self) -> list[StyleOption]:
        """Networks on the Hub tagged :data:`HUB_TAG`, with thumbnails of their style image.

        Takes at most ``hub_timeout`` seconds; on any failure (offline, timeout, HTTP
        error) it logs one line and returns what it found (possibly nothing).
        """
        found: list[StyleOption] = []
        try:
            if _is_hub_offline():
                logger.info("Hub discovery skipped: HF_HUB_OFFLINE is set; offering the embedded styles")
                return found
            worker = threading.Thread(target=self._list_hub, args=(found, time.monotonic() + self.hub_timeout),
                                      name="fst-hub-list", daemon=True)
            worker.start()
            worker.join(self.hub_timeout)
            if worker.is_alive():
                logger.warning("Hub discovery timed out after %.0f s; continuing with what was found",
                               self.hub_timeout)
            with self._lock:
                self._hub = list(found)
            return list(found)
        finally:
            self.hub_done.set()

    def _list_hub(self, found: list[StyleOption], deadline: float) -> None:
        from huggingface_hub import HfApi

        try:
            check_reachable()
            api = HfApi()
            models = list(islice(api.list_models(filter=HUB_TAG, limit=self.hub_limit), self.hub_limit))
        except Exception as exc:  # noqa: BLE001 - offline or Hub down: the catalogue still works
            if isinstance(exc, network_errors()):
                exc = remember_outage(exc)
            logger.warning("Hub discovery failed (%s: %s); offering the embedded styles only",
                           type(exc).__name__, str(exc)[:200])
            return
        for info in models:
            repo_id = str(getattr(info, "id", "") or "")
            if not _looks_like_repo_id(repo_id):
                continue
            thumb = self._hub_thumbnail(api, repo_id) if time.monotonic() < deadline else None
            found.append(StyleOption(repo_id, f"{repo_id} (Hub)", "hub", thumb))
        logger.info("Hub discovery: %d networks tagged %s", len(found), HUB_TAG)

    @staticmethod
    def _hub_thumbnail(api: Any, repo_id: str) -> np.ndarray | None:
        path = _bounded_hub_file(api, repo_id, "style.jpg", MAX_THUMBNAIL_BYTES)
        if path is None:
            return None
        try:
            return thumbnail(path)
        except FstError as exc:
            logger.info("style image of %s unusable: %s", repo_id, exc)
            return None

    # ------------------------------------------------------------------ loading
    def resolve_style(self, key: Any, variant: str = "full") -> tuple[str, CatalogEntry | None]:
        """Check a style key from the UI or API; return what to load and its catalogue entry.

        ``variant`` is ``"full"`` or ``"webcam"``; webcam falls back to full when the
        catalogue has no webcam network of that style.
        """
        if not isinstance(key, str) or not key.strip():
            raise AppError("Choose a style first (click a painting, or paste a Hub repo id such as user/vangogh).")
        key = key.strip()
        entry = next((e for e in load_catalog() if key in (e.name, e.hub_id) and e.kind == "style"), None)
        if entry is None and ":" in key:   # a style of a multi-style Hub network: "user/name:style"
            repo_id, _, style = key.rpartition(":")
            if not (_looks_like_repo_id(repo_id) and STYLE_NAME.match(style)):
                raise AppError(f"{key[:100]!r} is not a style from the list nor a style of a Hub network; "
                               "use the form user/name:style, e.g. user/paintings:udnie")
            return key, None
        if entry is not None:
            if variant == "webcam":
                webcam = _webcam_entry(entry)
                if webcam is not None:
                    return webcam.name, webcam
            return entry.name, entry
        if any(key == e.name for e in load_catalog()):
            raise AppError(f"{key!r} is not a style network")
        if not _looks_like_repo_id(key):
            raise AppError(f"{key[:100]!r} is not a style from the list nor a Hub repo id; "
                           "use the form user/name, e.g. user/vangogh")
        if Path(key).expanduser().exists():
            raise AppError(f"{key!r} names a folder on the server; only Hub repo ids are accepted")
        return key, None

    def load_style(self, key: Any, variant: str = "full", progress: Progress | None = None) -> Any:
        """The style network for ``key`` (catalogue name, Hub repo id, or ``repo id:style``), cached.

        A style of a multi-style network comes as that network with the style chosen
        (:class:`fst.mixing.BoundStyle`); every style of one network shares one load.
        """
        source, entry = self.resolve_style(key, variant)
        style = entry.style if entry is not None else None
        if entry is not None:
            source = entry.folder   # the styles of one multi-style network share its folder: one load
        elif ":" in source:
            source, _, style = source.rpartition(":")
        cache_key = ("style", source)
        if entry is None:
            self._raise_if_failed_recently(source)
        if cache_key not in self._cache and progress is not None:
            where = "embedded copy" if entry else "the Hub"
            progress(0.1, f"Loading {entry.display_name if entry else source} from {where}…")
        try:
            model = self._cache.get(cache_key)
        except ModelLoadError as exc:
            if entry is None:
                self._remember_failure(source, exc)
            raise
        if entry is None:
            self._remember_custom(source, model.style_names)
        if progress is not None:
            progress(1.0, "Model ready")
        return model.with_style(style) if style else model

    def load_colorizer(self, progress: Progress | None = None):
        """The catalogue's colorizer, cached; :class:`ColorizerUnavailable` when none is installed."""
        entry = self.colorizer_entry()
        if entry is None:
            raise ColorizerUnavailable(
                f"No trained colorizer is installed yet (no entry of kind 'colorizer' in {models_dir()}/catalog.json). "
                "Colorization will be available once one is published.")
        cache_key = ("colorizer", entry.name)
        if cache_key not in self._cache and progress is not None:
            progress(0.1, f"Loading {entry.display_name}…")
        return self._cache.get(cache_key)

    def load_arbitrary(self, progress: Progress | None = None):
        """The catalogue's any-painting network (:class:`fst.arbitrary.ArbitraryStyle`), cached."""
        entry = self.arbitrary_entry()
        if entry is None:
            raise AppError(f"No any-painting network is installed (no entry of kind 'arbitrary' in "
                           f"{models_dir()}/catalog.json); choose a style from the list instead.")
        cache_key = ("arbitrary", entry.name)
        if cache_key not in self._cache and progress is not None:
            progress(0.1, f"Loading {entry.display_name}…")
        return self._cache.get(cache_key)

    def _load(self, cache_key: Hashable) -> Any:
        kind, source = cache_key  # type: ignore[misc]
        started = time.perf_counter()
        if kind == "colorizer":
            from .colorizer import Colorizer

            model = Colorizer.from_pretrained(source, device=self.device).fold_batchnorm()
        elif kind == "arbitrary":
            from .arbitrary import ArbitraryStyle

            model = ArbitraryStyle.from_pretrained(source, device=self.device)
        else:
            model = FastStyle.from_pretrained(source, device=self.device)
        logger.info("loaded %s %s on %s in %.2f s", kind, source, self.device, time.perf_counter() - started)
        return model

    def _raise_if_failed_recently(self, repo_id: str) -> None:
        """Answer at once for a Hub id that failed to load within the last ``$FST_HUB_RETRY_AFTER``
        seconds (unknown, unreachable, broken): the same error, without another Hub request."""
        retry_after = settings.hub_retry_after()
        with self._lock:
            failure = self._failed.get(repo_id)
            if failure is not None and time.monotonic() - failure[0] > retry_after:
                del self._failed[repo_id]
                failure = None
        if failure is not None:
            error = failure[1]
            raise type(error)(str(error))

    def _remember_failure(self, repo_id: str, error: ModelLoadError) -> None:
        with self._lock:
            self._failed[repo_id] = (time.monotonic(), error)
            self._failed.move_to_end(repo_id)
            while len(self._failed) > MAX_FAILED_MODELS:
                self._failed.popitem(last=False)

    def _remember_custom(self, repo_id: str, style_names: list[str]) -> None:
        """Offer a loaded Hub network in the style lists: as itself, or as each of its styles."""
        options = [StyleOption(f"{repo_id}:{name}", f"{name} ({repo_id}, Hub)", "custom") for name in style_names] \
            or [StyleOption(repo_id, f"{repo_id} (Hub)", "custom")]
        with self._lock:
            for option in options:
                if option.key in self._custom or any(o.key == option.key for o in self._hub):
                    continue
                self._custom[option.key] = option
            while len(self._custom) > MAX_CUSTOM_MODELS:
                self._custom.popitem(last=False)

    # ------------------------------------------------------------------ model info
    def model_info(self, key: Any) -> str:
        """Markdown describing a loaded style network: config and model-card metadata (escaped)."""
        network, style = unbind(self.load_style(key))
        source, entry = self.resolve_style(key)
        if entry is None and ":" in source:
            source = source.rpartition(":")[0]
        config = network.config
        params = sum(p.numel() for p in network.parameters())
        name = entry.display_name if entry and entry.style else config.style_name
        rows = [
            ("Style", name or (entry.display_name if entry else source)),
            ("Network", f"{config.arch or 'custom'}: {config.channels} channels, {config.num_res_blocks} "
                        f"residual block{'s' if config.num_res_blocks != 1 else ''}, {params / 1e6:.2f} M parameters"),
            ("Source", f"embedded copy of {entry.hub_id}" if entry else f"Hub repo {source}"),
        ]
        if network.style_names:
            rows.insert(1, ("Styles", f"{len(network.style_names)} in one network (any two mix in one pass): "
                                      + ", ".join(network.style_names)))
        card = self._card(source, entry)
        for field, label in (("license", "License"), ("datasets", "Training data"), ("tags", "Tags")):
            value = card.get(field) if card else None
            if value:
                rows.append((label, _short(value)))
        return "\n".join(f"**{label}:** {_escape_markdown(str(text))}  " for label, text in rows)

    @staticmethod
    def _card(source: str, entry: CatalogEntry | None) -> dict | None:
        if entry is not None:
            return read_card_metadata(entry.path / "README.md")
        if _is_hub_offline():
            return None
        from huggingface_hub import HfApi

        path = _bounded_hub_file(HfApi(), source, "README.md", MAX_CARD_BYTES)
        return read_card_metadata(path) if path else None


def _webcam_entry(entry: CatalogEntry) -> CatalogEntry | None:
    return next((e for e in load_catalog() if e.name == entry.webcam_name and e.kind == "style"), None)


def _looks_like_repo_id(value: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if value.count("/") != 1 or len(value) > 96:
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def _bounded_hub_file(api: Any, repo_id: str, filename: str, max_bytes: int) -> str | None:
    """Download ``filename`` of ``repo_id`` only if the Hub says it is at most ``max_bytes``."""
    from huggingface_hub import hf_hub_download

    try:
        check_reachable()
        infos = api.get_paths_info(repo_id, [filename])
        size = next((getattr(i, "size", None) for i in infos if getattr(i, "path", None) == filename), None)
        if size is None or size > max_bytes:
            return None
        return hf_hub_download(repo_id, filename)
    except Exception as exc:  # noqa: BLE001 - optional extras: a missing card or image is fine
        logger.info("could not fetch %s of %s: %s", filename, repo_id, type(exc).__name__)
        return None


def _short(value: Any, max_items: int = 8, max_chars: int = 120) -> str:
    """A bounded one-line rendering of untrusted card metadata."""
    if isinstance(value, (list, tuple)):
        text = ", ".join(str(v)[:60] for v in list(value)[:max_items] if isinstance(v, (str, int, float)))
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        text = "(not shown)"
    return text[:max_chars]


def _escape_markdown(text: str) -> str:
    """Untrusted text shown as literal text in Markdown (no links, HTML or formatting)."""
    text = "".join(ch for ch in text if ch.isprintable())
    return "".join(f"\\{ch}" if ch in "\\`*_{}[]()<>#+-.!|~&" else ch for ch in text)


# --------------------------------------------------------------------------- images


def decode_upload(payload: Any, *, max_pixels: int | None = None, what: str = "photo") -> Image.Image:
    """An RGB image from whatever the UI or API delivered, decoded safely by fst.imageio.

    Accepts Gradio's file payload (``{"path": ...}`` or a ``data:`` URL), a file path,
    a PIL image or a numpy array. Raises :class:`fst.errors.FstError` with a clear message;
    ``what`` names the upload in it (a "photo", a "painting").
    """
    if _is_empty(payload):
        raise AppError(f"No image: upload a {what} (PNG or JPEG) first.")
    try:
        return _decode(payload, max_pixels)
    except FstError as exc:
        if what == "photo":
            raise
        raise InvalidImageError(f"The {what} cannot be used: {exc}") from None


def _is_empty(payload: Any) -> bool:
    return payload is None or (isinstance(payload, (str, dict)) and not payload)


def _decode(payload: Any, max_pixels: int | None) -> Image.Image:
    if isinstance(payload, dict):
        path, url = payload.get("path"), payload.get("url")
        if isinstance(path, str) and path:
            return imageio.read_image(path, max_pixels=max_pixels)
        if isinstance(url, str) and url.startswith("data:"):
            return imageio.read_image(_data_url_bytes(url), max_pixels=max_pixels)
        raise AppError("No image data received; upload the image again.")
    if isinstance(payload, str) and payload.startswith("data:"):
        return imageio.read_image(_data_url_bytes(payload), max_pixels=max_pixels)
    return imageio.read_image(payload, max_pixels=max_pixels)


def _data_url_bytes(url: str) -> bytes:
    if len(url) > MAX_DATA_URL_CHARS:
        raise InvalidImageError("image data is too large; upload a smaller image")
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise InvalidImageError("image data is not base64-encoded; upload a PNG or JPEG image")
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raise InvalidImageError("image data is not valid base64; upload a PNG or JPEG image") from None


def downscale(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` shrunk (Lanczos) so its longer side is at most ``max_side``; never enlarged."""
    width, height = image.size
    if max(width, height) <= max_side:
        return image
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def downscale_to_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """``image`` shrunk so it has at most ``max_pixels`` pixels."""
    width, height = image.size
    if width * height <= max_pixels:
        return image
    scale = (max_pixels / (width * height)) ** 0.5
    return downscale(image, max(1, int(max(width, height) * scale)))


def is_monochrome(array: np.ndarray, tolerance: float = MONOCHROME_TOLERANCE) -> bool:
    """True for black-and-white photos as old photos are: gray, sepia- or cyan-toned, faded or
    yellowed, split-toned; judged by the spread of their chroma (:func:`fst.color.chroma_spread`),
    not by exact gray."""
    return chroma_spread(array) < tolerance


def check_number(name: str, value: Any, low: float, high: float) -> float:
    """``value`` (a request's field ``name``) as a float in ``[low, high]``, else an AppError for the user."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        raise AppError(f"{name} must be a number between {low:g} and {high:g}, got {str(value)[:40]!r}")
    return float(value)


def check_integer(name: str, value: Any, low: int, high: int) -> int:
    """``value`` (a request's field ``name``) as a whole number in ``[low, high]``, else an AppError."""
    number = check_number(name, value, low, high)
    if number != int(number):
        raise AppError(f"{name} must be a whole number, got {value!r}")
    return int(number)


# --------------------------------------------------------------------------- backend


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

    def summary(self) -> str:
        """E.g. ``starry_night_rt · 12.3 fps · 41 ms per frame · 250 frames · 2 skipped``."""
        text = f"{self.fps:.1f} fps · {self.latency_ms:.0f} ms per frame · {self.frames} frames"
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
        painting = None if _is_empty(style_image) else decode_upload(style_image, what="painting")
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
                     style_scale: Any = 1.0, blend_with: Any = "", mix: Any = 0.0, style_image: Any = None
                     ) -> tuple[np.ndarray | None, WebcamSession]:
        """Stylize one webcam frame. Returns (styled frame or None to skip it, session).

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
        if _is_empty(style_image):
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
        try:
            content = np.asarray(downscale(decode_upload(frame), resolution))
        except FstError as exc:
            session.skipped += 1
            logger.debug("webcam frame skipped: %s", exc)
            return None, session
        styled = run(content)
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


__all__ = ["AppBackend", "AppError", "AppSettings", "ColorizerUnavailable", "ModelCache", "ModelRegistry",
           "Result", "StyleOption", "WebcamSession", "check_integer", "check_number", "configure_torch",
           "decode_upload", "device_summary", "downscale", "is_monochrome", "thumbnail", "user_message"]
