"""Resizing PIL images: the one family every PIL-side resize goes through (tensors use
:func:`fst.inference.resize_max_side`)."""
from __future__ import annotations

from PIL import Image


def scale_image(image: Image.Image, scale: float, resample: int = Image.LANCZOS) -> Image.Image:
    """``image`` scaled by ``scale``; each side rounded, at least 1 pixel."""
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, resample)


def fit_longer_side(image: Image.Image, side: int, resample: int = Image.LANCZOS) -> Image.Image:
    """``image`` scaled (up or down) so that its longer side is ``side`` pixels."""
    return scale_image(image, side / max(image.size), resample)


def centre_square(image: Image.Image, side: int, resample: int = Image.BICUBIC) -> Image.Image:
    """The central ``side`` x ``side`` square of ``image`` scaled so that its shorter side is ``side``."""
    scaled = scale_image(image, side / min(image.size), resample)
    left, top = (scaled.width - side) // 2, (scaled.height - side) // 2
    return scaled.crop((left, top, left + side, top + side))
