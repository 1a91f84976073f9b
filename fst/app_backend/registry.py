"""The styles on offer: the embedded catalogue, networks found on the Hub by tag (bounded time,
failures ignored) and repo ids users paste; model info read from the untrusted model card."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Hashable

import numpy as np
import torch
from PIL import Image

from .. import catalog, imageio
from ..catalog import CatalogEntry, load_catalog
from ..errors import FstError, ModelLoadError
from ..faststyle import FastStyle
from ..hub import resolve_device
from .. import settings
from ..hub_access import check_reachable, network_errors, remember_outage
from ..mixing import unbind
from ..model_card import MAX_CARD_BYTES, read_card_metadata
from ..multistyle import STYLE_NAME
from ..paths import models_dir
from .cache import ModelCache
from .errors import AppError, ColorizerUnavailable

logger = logging.getLogger("fst.app")

HUB_TAG = "fast-style-transfer"
THUMBNAIL_SIDE = 256
MAX_THUMBNAIL_BYTES = 4 << 20          # a Hub repo's style.jpg is fetched only below this size
MAX_THUMBNAIL_PIXELS = 25_000_000
MAX_CUSTOM_MODELS = 16                 # user-pasted repo ids remembered for the style lists
MAX_FAILED_MODELS = 256                # Hub ids that failed to load, remembered for $FST_HUB_RETRY_AFTER seconds

Progress = Callable[[float, str], None]



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
            from ..colorizer import Colorizer

            model = Colorizer.from_pretrained(source, device=self.device).fold_batchnorm()
        elif kind == "arbitrary":
            from ..arbitrary import ArbitraryStyle

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
