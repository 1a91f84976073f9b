"""Model cards: rendered from ``model_cards/*.md`` templates, read back safely."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from .paths import REPO_ROOT

logger = logging.getLogger(__name__)

TEMPLATES_DIR = REPO_ROOT / "model_cards"
MAX_CARD_BYTES = 256 << 10   # cards are a few KB; an untrusted card is never read past this


def render_model_card(template: str = "style", **context: Any) -> str:
    """Render ``model_cards/<template>.md`` (Jinja2) with ``context``."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=False,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["yaml_str"] = lambda v: yaml.safe_dump(str(v), default_style='"').strip()
    return env.get_template(f"{template}.md").render(**context)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases (the 'billion laughs' expansion)."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases are not allowed in model card metadata")
        return super().compose_node(parent, index)


def read_card_metadata(path: str | Path) -> dict[str, Any] | None:
    """The YAML front matter of an untrusted model card, or None if absent/invalid.

    Size-bounded, safe (no Python objects), and aliases are refused so a crafted
    card cannot expand into billions of nodes.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CARD_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_CARD_BYTES:
        logger.warning("model card %s is too large; metadata ignored", path)
        return None
    text = raw.decode("utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        logger.warning("could not parse model card metadata in %s (unterminated front matter)", path)
        return None
    try:
        data = yaml.load(text[3:end], Loader=_NoAliasLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        logger.warning("could not parse model card metadata in %s: %s", path, str(exc).splitlines()[0][:120])
        return None
    return data if isinstance(data, dict) else None
