"""Model cards: rendered from ``model_cards/*.md`` templates, read back safely."""
from __future__ import annotations

import logging
import re
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
    env.filters["duration"] = format_duration
    return env.get_template(f"{template}.md").render(**context)


def format_duration(seconds: float) -> str:
    """A training time in words: ``42 s``, ``13.0 minutes``, ``2.5 hours``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"


#: The usage snippet of the card templates names the repo in these two forms.
_REPO_ID_IN_SNIPPET = (re.compile(r'(\.from_pretrained\(")[^"\n]*("\))'), re.compile(r"(--model )\S+( -o )"))


def set_repo_id(card: str, repo_id: str) -> str:
    """``card`` with its usage snippet (``from_pretrained("...")``, ``--model ...``) naming ``repo_id``."""
    for pattern in _REPO_ID_IN_SNIPPET:
        card = pattern.sub(lambda match: f"{match.group(1)}{repo_id}{match.group(2)}", card)
    return card


_PATH_CANDIDATE = re.compile(r"(?<![\w.:/\\])(?:~|\.\.?)?/[^\s\"'`)\]>,;]+|\b[A-Za-z]:\\[^\s\"'`)\]>,;]+")


_LOCAL_ROOTS = {"home", "root", "tmp", "Users", "mnt", "media", "opt", "srv", "var", "work", "data", "scratch"}


def local_paths(text: str) -> list[str]:
    """Paths of a local machine found in ``text`` (a card or config.json about to be published):
    relative (``../x``, ``./x``), home (``~/x``), Windows (``C:\\x``), and absolute ones under a
    usual root (``/home``, ``/tmp``, ...) or whose folder exists here. URLs are not paths."""
    found = []
    for candidate in _PATH_CANDIDATE.findall(text):
        if candidate.startswith(("./", "../", "~/")) or ":\\" in candidate:
            found.append(candidate)
        elif candidate.count("/") > 1 and (candidate.split("/")[1] in _LOCAL_ROOTS or Path(candidate).parent.is_dir()):
            found.append(candidate)
    return list(dict.fromkeys(found))


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
