"""The style sheet: one photo in every available style, as a labelled grid.

    >>> from fst.sheet import default_items, render_sheet
    >>> render_sheet(Image.open("photo.jpg"), default_items()).save("sheet.jpg")

Items are (label, network) pairs; a multi-style network becomes one item per style
(:func:`expand`). The first cell is the photo itself.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import catalog
from .mixing import unbind

DEFAULT_CELL = 256      # longer side of each cell in pixels
LABEL_HEIGHT = 22
MAX_CELL = 1024


@dataclasses.dataclass(frozen=True)
class SheetItem:
    """One cell of the sheet: ``model`` (anything with ``stylize(image)``) labelled ``label``."""

    label: str
    model: Any


def expand(label: str, model: Any) -> list[SheetItem]:
    """``model`` as sheet items: one per style of a multi-style network with no style chosen
    (labelled ``style (label)``), else the model itself."""
    network, style = unbind(model)
    if style is None and network.style_names:
        return [SheetItem(f"{name} ({label})", network.with_style(name)) for name in network.style_names]
    return [SheetItem(label, model)]


def default_items(load: Callable[[str], Any] | None = None) -> list[SheetItem]:
    """The embedded catalogue's styles (as the app lists them), each multi-style network loaded once.

    ``load(folder)`` loads a network (default: ``FastStyle.from_pretrained`` on the CPU).
    """
    if load is None:
        from .faststyle import FastStyle

        def load(folder: str) -> Any:
            return FastStyle.from_pretrained(folder, device="cpu")

    networks: dict[str, Any] = {}
    items: list[SheetItem] = []
    for entry in catalog.style_entries():
        folder = str(entry.path)
        if folder not in networks:
            networks[folder] = load(folder)
        model = networks[folder]
        items += expand(entry.display_name, model.with_style(entry.style) if entry.style else model)
    return items


def render_sheet(photo: Image.Image, items: Sequence[SheetItem], *, cell: int = DEFAULT_CELL,
                 columns: int | None = None, progress: Callable[[int, int, str], None] | None = None) -> Image.Image:
    """The photo (downscaled so its longer side is ``cell``) and its stylized versions in a grid
    of ``columns`` (default: about square), each labelled; returns an RGB image."""
    if not 16 <= cell <= MAX_CELL:
        raise ValueError(f"cell must be an integer in 16..{MAX_CELL}, got {cell!r}")
    if not items:
        raise ValueError("the sheet needs at least one style")
    small = photo.convert("RGB")
    small.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    content = np.asarray(small)
    cells = [("photo", small)]
    for index, item in enumerate(items):
        if progress is not None:
            progress(index, len(items), item.label)
        cells.append((item.label, Image.fromarray(np.asarray(item.model.stylize(content)))))
    return grid(cells, columns)


def grid(cells: Iterable[tuple[str, Image.Image]], columns: int | None = None) -> Image.Image:
    """Images of one size in rows of ``columns``, each with its label below it, on white."""
    cells = list(cells)
    columns = columns or math.ceil(math.sqrt(len(cells)))
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    width, height = cells[0][1].size
    rows = math.ceil(len(cells) / columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font()
    for index, (label, image) in enumerate(cells):
        left, top = (index % columns) * width, (index // columns) * (height + LABEL_HEIGHT)
        sheet.paste(image, (left, top))
        draw.text((left + 4, top + height + 4), _fit(draw, label, font, width - 8), fill="black", font=font)
    return sheet


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1: the fixed-size bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text``, shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


__all__ = ["SheetItem", "default_items", "expand", "grid", "render_sheet"]
