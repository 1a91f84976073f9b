"""The catalogue of embedded default networks (``catalog.json`` in the models folder).

The models folder is ``$FST_MODELS_DIR`` when set, else ``models/`` of the repository
(see :func:`fst.paths.models_dir`). The format::

    {"models": [{"name": "starry_night", "display_name": "The Starry Night (Vincent van Gogh)",
                 "kind": "style", "folder": "starry_night", "hub_id": "fast-style/starry-night",
                 "style_image": "style.jpg", "webcam": "starry_night_rt"}, ...]}

``style_image`` and ``webcam`` are optional; ``webcam`` names the entry that holds the
webcam network of the same style (a faster one, e.g. ``johnson-rt``): the app's webcam tab
uses it on CPU, and the style list shows only the full entry. Without the field, an entry
named ``<name>_rt`` is the style's webcam network. Catalogues written before the field had
this name call it ``lite``; that key is still read.

``style`` (optional) makes an entry one style of the multi-style network in its folder::

    {"name": "multistyle_rt:udnie", "display_name": "Udnie (Francis Picabia)", "kind": "style",
     "folder": "multistyle_rt", "hub_id": "fast-style/multistyle-rt", "style": "udnie",
     "style_image": "styles/udnie.jpg"}

The style list then shows that network as its styles (:func:`style_entries`), and all of
them share one loaded network.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from functools import lru_cache
from pathlib import Path

from .paths import MODELS_DIR, models_dir

logger = logging.getLogger(__name__)

KINDS = ("style", "colorizer", "arbitrary")   # arbitrary: an any-painting network (fst.arbitrary)
#: A style's webcam network is the entry ``<name>_rt`` unless its ``webcam`` field names another.
WEBCAM_SUFFIX = "_rt"
MAX_CATALOG_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One embedded network: where it lives locally and on the Hub."""

    name: str           # short key, e.g. "starry_night"
    display_name: str   # shown in the app, e.g. "The Starry Night (van Gogh)"
    kind: str           # "style" or "colorizer"
    folder: str         # folder under the models folder
    hub_id: str         # Hub repo id, e.g. "fast-style/starry-night"
    style_image: str = "style.jpg"
    webcam: str | None = None   # name of the entry with the webcam network of this style, if any
    style: str | None = None    # this entry is that style of the multi-style network in ``folder``
    root: Path = dataclasses.field(default=MODELS_DIR, compare=False, repr=False)

    @property
    def webcam_name(self) -> str:
        """The name of the entry that holds this style's webcam network (it may not exist)."""
        return self.webcam or f"{self.name}{WEBCAM_SUFFIX}"

    @property
    def path(self) -> Path:
        """The entry's folder (config.json, model.safetensors, README.md, style image)."""
        return self.root / self.folder

    @property
    def style_image_path(self) -> Path | None:
        """The style painting shipped with the entry, or None when absent."""
        path = self.path / self.style_image
        return path if self.style_image and path.is_file() else None


def load_catalog(path: Path | None = None) -> tuple[CatalogEntry, ...]:
    """Entries of the catalogue whose folder exists (empty if the file is absent or invalid).

    Cached per file and modification time: a catalogue written while the process runs
    (training finished) or a different ``$FST_MODELS_DIR`` is picked up on the next call.
    """
    path = Path(path) if path is not None else models_dir() / "catalog.json"
    try:
        stat = path.stat()
    except OSError:
        return ()
    return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def style_entries() -> list[CatalogEntry]:
    """The catalogue's styles as offered to users: webcam networks folded into their style's
    entry, and a multi-style network whose styles have entries shown as those styles."""
    entries = [e for e in load_catalog() if e.kind == "style"]
    webcam_names = {e.webcam_name for e in entries}
    split = {e.folder for e in entries if e.style}
    return [e for e in entries if e.name not in webcam_names and (e.style or e.folder not in split)]


def find_entry(name_or_id: str) -> CatalogEntry | None:
    """The catalogue entry whose name, folder or Hub id is ``name_or_id``."""
    for entry in load_catalog():
        if name_or_id in (entry.name, entry.folder, entry.hub_id):
            return entry
    return None


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> tuple[CatalogEntry, ...]:
    del mtime_ns  # part of the cache key only
    catalog_file = Path(path)
    if size > MAX_CATALOG_BYTES:
        logger.error("%s is larger than %d bytes; ignoring it", path, MAX_CATALOG_BYTES)
        return ()
    try:
        raw = json.loads(catalog_file.read_text(encoding="utf-8"))
        items = raw["models"]
        if not isinstance(items, list):
            raise TypeError("'models' must be a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.error("cannot read the model catalogue %s: %s", path, exc)
        return ()
    entries = []
    for index, item in enumerate(items):
        try:
            entry = _entry(item, catalog_file.parent)
        except (TypeError, ValueError) as exc:
            logger.error("%s: skipping models[%d]: %s", path, index, exc)
            continue
        if entry.path.is_dir():
            entries.append(entry)
    return tuple(entries)


def _entry(item: object, root: Path) -> CatalogEntry:
    """Validate one JSON item: known string fields only, a folder inside ``root``."""
    if not isinstance(item, dict):
        raise TypeError("an entry must be a JSON object")
    if "lite" in item and "webcam" not in item:   # the field's former name
        item = {("webcam" if k == "lite" else k): v for k, v in item.items()}
    fields = {f.name for f in dataclasses.fields(CatalogEntry)} - {"root"}
    unknown = sorted(set(item) - fields)
    if unknown:
        logger.warning("catalogue entry %r: ignoring unknown keys %s", item.get("name"), ", ".join(unknown))
    values = {k: v for k, v in item.items() if k in fields}
    for key, value in values.items():
        if not (isinstance(value, str) or (key in ("webcam", "style") and value is None)):
            raise TypeError(f"{key} must be a string")
    entry = CatalogEntry(**values, root=root)
    if entry.kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {entry.kind!r}")
    if not entry.folder or not entry.path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"folder {entry.folder!r} is not inside {root}")
    return entry
