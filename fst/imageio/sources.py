"""Reading an image source's bytes (path, bytes, stream) within the file-size and pixel limits."""
from __future__ import annotations

import operator
import os
import stat
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import InvalidImageError
from ..settings import MAX_PIXELS_ENV
from .identify import UPLOAD_HINT, detail, show

MAX_FILE_BYTES: int = 256 * 1024 * 1024
"""Encoded files larger than this are refused before being read."""


def resolve_max_pixels(max_pixels: int | None) -> int:
    """Per-call value, else $FST_MAX_PIXELS, else DEFAULT_MAX_PIXELS (see :func:`fst.settings.max_pixels`)."""
    if max_pixels is not None:
        try:
            value = operator.index(max_pixels)
        except TypeError:
            value = 0
        if isinstance(max_pixels, bool) or value <= 0:
            raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
        return value
    return settings.max_pixels()   # a bad setting must not break every upload: it keeps the default


def check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"image has no pixels ({width}x{height}); {UPLOAD_HINT}")
    if width * height > limit:
        raise InvalidImageError(too_large_message(width, height, limit))


def too_large_message(width: int | None, height: int | None, limit: int, pixels: int | None = None) -> str:
    dims = f"{width}x{height} = {width * height}" if width and height else f"{pixels or 'too many'}"
    return (f"image too large ({dims} pixels > max {limit} pixels); downscale it, "
            f"or raise the limit with max_pixels= or the {MAX_PIXELS_ENV} environment variable")


def read_source_bytes(source: Any) -> bytes:
    """Bytes of a path / bytes-like / binary file object, bounded by MAX_FILE_BYTES."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        data = _read_path(source)
    elif callable(getattr(source, "read", None)):
        data = _read_stream(source)
    else:
        raise InvalidImageError(
            f"unsupported image source of type {type(source).__name__}; pass a file path, bytes, "
            "a binary file object, a PIL image, a numpy array or a torch tensor")
    if not data:
        raise InvalidImageError(f"the uploaded file is empty (0 bytes); {UPLOAD_HINT}")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImageError(_file_too_big_message(len(data)))
    return data


def _read_path(source: str | os.PathLike) -> bytes:
    try:
        path = Path(source)
        info = path.stat()
    except FileNotFoundError:
        raise InvalidImageError(f"image file not found: {show(source)}") from None
    except (OSError, ValueError) as error:  # ValueError: embedded NUL byte
        raise InvalidImageError(f"cannot read image file {show(source)}: {detail(error)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidImageError(f"{show(path)} is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):  # FIFOs and devices could block or never end
        raise InvalidImageError(f"{show(path)} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise InvalidImageError(_file_too_big_message(info.st_size))
    try:
        with open(path, "rb") as file:
            return file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise InvalidImageError(f"cannot read image file {show(path)}: {detail(error)}") from None


def _read_stream(stream: Any) -> bytes:
    try:
        data = stream.read(MAX_FILE_BYTES + 1)
    except Exception as error:  # noqa: BLE001 - arbitrary file-like objects
        raise InvalidImageError(f"could not read the uploaded file: {detail(error)}") from None
    if isinstance(data, str):
        raise InvalidImageError("the file object returned text; open the image in binary mode ('rb')")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidImageError(f"the file object returned {type(data).__name__}, not bytes")
    return bytes(data)


def _file_too_big_message(size: int) -> str:
    return (f"image file too large ({size / 2**20:.0f} MiB > max {MAX_FILE_BYTES // 2**20} MiB); "
            "upload a smaller or more compressed image")
