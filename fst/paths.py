"""Where fst keeps its files: the user cache and the embedded default models."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
MODELS_DIR = REPO_ROOT / "models"


def cache_dir() -> Path:
    """fst's cache folder: ``$FST_CACHE``, else ``$HF_HOME/fst``, else ``~/.cache/fst``."""
    if os.environ.get("FST_CACHE"):
        return Path(os.environ["FST_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "fst"
    return Path.home() / ".cache" / "fst"
