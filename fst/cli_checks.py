"""Checks of command-line arguments shared by the ``fst`` subcommands and ``fst.batch``.

Each raises :class:`UsageError` (exit code 2) with a one-line message naming the option.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

from .errors import FstError

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2
STYLE_MIN_SIDE = 16      # fst.faststyle.MIN_SIDE: the smallest --max-side a style network is run at
COLOR_MIN_SIDE = 8       # the colorizer's total stride: the smallest --max-side it predicts colours at


class UsageError(FstError, ValueError):
    """A command-line argument is unusable (exit code 2)."""


def with_style(model, style: str | None):
    """``model`` with the --style choice bound (a bad choice is a UsageError naming the styles)."""
    if style is None:
        return model
    try:
        return model.with_style(style)
    except FstError as exc:
        raise UsageError(f"--style: {exc}") from None


def check_number(name: str, value: float, low: float, high: float) -> None:
    """``value`` must be a finite number in [low, high]."""
    if not (math.isfinite(value) and low <= value <= high):
        raise UsageError(f"{name} must be a number in [{low:g}, {high:g}], got {value:g}")


def check_size(name: str, value: int | None, minimum: int, *, optional: bool = True) -> None:
    """``value`` must be an integer >= minimum (or None, when ``optional``)."""
    if value is None and optional:
        return
    if value is None or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value}")


def check_device(device: str | None) -> None:
    """``device`` must name a device this machine has (or be None: the best available)."""
    from .hub import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def check_folder_writable(folder: Path) -> None:
    """Create ``folder`` if needed and make sure files can be created in it (catches /proc, read-only disks)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".fst-write-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write files into {folder}: {exc.strerror or exc}; "
                         "choose another output folder") from None


def check_style_syntax(style: str | None) -> None:
    """A --style blend that cannot be parsed is refused before anything is loaded."""
    from .multistyle import parse_blend

    if style is not None and (":" in style or "," in style):
        try:
            parse_blend(style)
        except FstError as exc:
            raise UsageError(f"--style: {exc}") from None
