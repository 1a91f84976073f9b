"""The catalogue of embedded default networks (``models/catalog.json``)."""
from __future__ import annotations

import dataclasses
import json
import logging
from functools import lru_cache
from pathlib import Path

from .paths import MODELS_DIR

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One embedded network: where it lives locally and on the Hub."""

    name: str           # short key, e.g. "starry_night"
    display_name: str   # shown in the app, e.g. "The Starry Night (van Gogh)"
    kind: str           # "style" or "colorizer"
    folder: str         # folder under models/
    hub_id: str         # Hub repo id, e.g. "fast-style/starry-night"
    style_image: str = "style.jpg"

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.folder


@lru_cache(maxsize=1)
def load_catalog(path: Path | None = None) -> tuple[CatalogEntry, ...]:
    """Entries of the catalogue whose folder exists (empty if the file is absent)."""
    path = path or MODELS_DIR / "catalog.json"
    if not path.is_file():
        return ()
    raw = json.loads(path.read_text(encoding="utf-8"))
    entries = tuple(CatalogEntry(**item) for item in raw["models"])
    return tuple(entry for entry in entries if entry.path.is_dir())


def find_entry(name_or_id: str) -> CatalogEntry | None:
    """The catalogue entry whose name, folder or Hub id is ``name_or_id``."""
    for entry in load_catalog():
        if name_or_id in (entry.name, entry.folder, entry.hub_id):
            return entry
    return None
