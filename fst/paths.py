"""Where fst keeps its files: the user cache and the embedded default models."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
MODELS_DIR = REPO_ROOT / "models"
"""The embedded default networks shipped with the repository."""
MODELS_DIR_ENV = "FST_MODELS_DIR"
"""Environment variable that points fst (and the app's ``--models-dir``) at another models folder."""


def models_dir() -> Path:
    """The folder of embedded default networks: ``$FST_MODELS_DIR``, else ``models/`` of the repo.

    Read on every call, so a process can switch folders (the app's ``--models-dir``, tests).
    """
    override = os.environ.get(MODELS_DIR_ENV, "").strip()
    return Path(override).expanduser().resolve() if override else MODELS_DIR


def cache_dir() -> Path:
    """fst's cache folder: ``$FST_CACHE``, else ``$HF_HOME/fst``, else ``~/.cache/fst``."""
    if os.environ.get("FST_CACHE"):
        return Path(os.environ["FST_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "fst"
    return Path.home() / ".cache" / "fst"
