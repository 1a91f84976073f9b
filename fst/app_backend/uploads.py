"""Uploads decoded safely (payload kinds of Gradio and the API), resized, and checked."""
from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
from PIL import Image

from .. import imageio
from ..color import chroma_spread
from ..errors import FstError, InvalidImageError
from .errors import AppError

MAX_DATA_URL_CHARS = (imageio.MAX_FILE_BYTES * 4) // 3 + 1024
MONOCHROME_TOLERANCE = 4.0             # chroma spread (CIE Lab) below which a photo counts as black and white



def decode_upload(payload: Any, *, max_pixels: int | None = None, what: str = "photo") -> Image.Image:
    """An RGB image from whatever the UI or API delivered, decoded safely by fst.imageio.

    Accepts Gradio's file payload (``{"path": ...}`` or a ``data:`` URL), a file path,
    a PIL image or a numpy array. Raises :class:`fst.errors.FstError` with a clear message;
    ``what`` names the upload in it (a "photo", a "painting").
    """
    if is_empty_upload(payload):
        raise AppError(f"No image: upload a {what} (PNG or JPEG) first.")
    try:
        return _decode(payload, max_pixels)
    except FstError as exc:
        if what == "photo":
            raise
        raise InvalidImageError(f"The {what} cannot be used: {exc}") from None


def is_empty_upload(payload: Any) -> bool:
    """True when the UI or API sent nothing (no file, an empty string or payload)."""
    return payload is None or (isinstance(payload, (str, dict)) and not payload)


def _decode(payload: Any, max_pixels: int | None) -> Image.Image:
    if isinstance(payload, dict):
        path, url = payload.get("path"), payload.get("url")
        if isinstance(path, str) and path:
            return imageio.read_image(path, max_pixels=max_pixels)
        if isinstance(url, str) and url.startswith("data:"):
            return imageio.read_image(_data_url_bytes(url), max_pixels=max_pixels)
        raise AppError("No image data received; upload the image again.")
    if isinstance(payload, str) and payload.startswith("data:"):
        return imageio.read_image(_data_url_bytes(payload), max_pixels=max_pixels)
    return imageio.read_image(payload, max_pixels=max_pixels)


def _data_url_bytes(url: str) -> bytes:
    if len(url) > MAX_DATA_URL_CHARS:
        raise InvalidImageError("image data is too large; upload a smaller image")
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise InvalidImageError("image data is not base64-encoded; upload a PNG or JPEG image")
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raise InvalidImageError("image data is not valid base64; upload a PNG or JPEG image") from None


def downscale(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` shrunk (Lanczos) so its longer side is at most ``max_side``; never enlarged."""
    width, height = image.size
    if max(width, height) <= max_side:
        return image
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def downscale_to_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """``image`` shrunk so it has at most ``max_pixels`` pixels."""
    width, height = image.size
    if width * height <= max_pixels:
        return image
    scale = (max_pixels / (width * height)) ** 0.5
    return downscale(image, max(1, int(max(width, height) * scale)))


def is_monochrome(array: np.ndarray, tolerance: float = MONOCHROME_TOLERANCE) -> bool:
    """True for black-and-white photos as old photos are: gray, sepia- or cyan-toned, faded or
    yellowed, split-toned; judged by the spread of their chroma (:func:`fst.color.chroma_spread`),
    not by exact gray."""
    return chroma_spread(array) < tolerance


def check_number(name: str, value: Any, low: float, high: float) -> float:
    """``value`` (a request's field ``name``) as a float in ``[low, high]``, else an AppError for the user."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        raise AppError(f"{name} must be a number between {low:g} and {high:g}, got {str(value)[:40]!r}")
    return float(value)


def check_integer(name: str, value: Any, low: int, high: int) -> int:
    """``value`` (a request's field ``name``) as a whole number in ``[low, high]``, else an AppError."""
    number = check_number(name, value, low, high)
    if number != int(number):
        raise AppError(f"{name} must be a whole number, got {value!r}")
    return int(number)
