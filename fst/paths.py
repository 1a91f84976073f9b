"""Where fst keeps its files: the user cache and the embedded default models."""
from __future__ import annotations

import os
from pathlib import Path

from . import settings
from .settings import MODELS_DIR_ENV  # noqa: F401 - the variable behind models_dir() (app.py's --models-dir)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
MODELS_DIR = REPO_ROOT / "models"
"""The embedded default networks shipped with the repository."""


def models_dir() -> Path:
    """The folder of embedded default networks: ``$FST_MODELS_DIR``, else ``models/`` of the repo.

    Read on every call, so a process can switch folders (the app's ``--models-dir``, tests).
    """
    return settings.models_dir() or MODELS_DIR


def cache_dir() -> Path:
    """fst's cache folder: ``$FST_CACHE``, else ``$HF_HOME/fst``, else ``~/.cache/fst``."""
    override = settings.cache_dir()
    if override is not None:
        return override
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "fst"
    return Path.home() / ".cache" / "fst"
