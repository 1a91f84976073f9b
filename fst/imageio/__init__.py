"""Safe image input/output for uploads, webcam frames, files, arrays and tensors.

Everything a user can hand us ends up here, so every failure becomes an
:class:`fst.errors.InvalidImageError` whose message says what is wrong and what
to do; no raw PIL/OSError/numpy traceback escapes.

Decoding (``read_image``):

* Format is detected from the content, never from the extension. Decoded
  formats: PNG/APNG, JPEG/MPO, GIF, BMP, WebP, TIFF, ICO, PPM/PGM/PBM, AVIF.
  Anything else is rejected naming what was detected (SVG, HTML, PDF, text,
  HEIC, ZIP, ...). SVG and other vector/active content is never rasterised.
* Size limit: the pixel count (width x height) is checked from the header,
  before any pixel is decoded. The limit is ``max_pixels=`` per call, else the
  ``FST_MAX_PIXELS`` environment variable, else :data:`DEFAULT_MAX_PIXELS`.
  Pillow's own decompression-bomb guard stays on (we never touch the global
  ``Image.MAX_IMAGE_PIXELS``), so limits above ~179 Mpx are capped by Pillow.
  Files above :data:`MAX_FILE_BYTES` are refused before reading.
* Truncated/corrupt files are errors (``ImageFile.LOAD_TRUNCATED_IMAGES`` is
  never set).
* The result is always a fresh mode-"RGB" image built from pixels only: EXIF
  orientation applied, no EXIF/ICC/XMP/trailing bytes carried over (embedded
  ICC profiles are ignored; pixels are treated as sRGB). Transparent pixels are
  composited onto :data:`BACKGROUND` (white). Animations and multi-page files
  use their first frame (a warning is logged). 16-bit and float images are
  scaled to 8 bits, not clipped. CMYK (including Adobe inverted CMYK JPEGs) is
  converted to RGB.
* Geometry is not judged here: 1x1 or 1x8000 images are valid and returned as
  they are (any aspect ratio); the network code resizes small inputs.

Arrays and tensors (``to_rgb_array``): HxW, HxWx1, HxWx2 (gray+alpha), HxWx3,
HxWx4 numpy arrays of bool, uint8, uint16 (scaled by 1/257), other ints and
floats (range [0, 1] when max <= 1.5, else [0, 255]; other ranges are
min-max rescaled with a warning); torch tensors 3xHxW, 1x3xHxW (or 1-channel)
with floats in [0, 1]. NaN/Inf and empty frames are errors.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image

from ..errors import InvalidImageError

# The default pixel limit (width x height, 64 000 000: e.g. 8000 x 8000) and the variable that changes it.
from ..settings import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
from .arrays import BACKGROUND, array_to_rgb, is_array_or_tensor, is_tensor, tensor_to_hwc
from .decode import normalize, open_bytes, verify_file
from .geometry import centre_square, fit_longer_side, scale_image
from .identify import DECODE_FORMATS, detail, show
from .sources import MAX_FILE_BYTES, read_source_bytes, resolve_max_pixels
from .writing import atomic_save

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".bmp",
    ".tif", ".tiff", ".ico", ".ppm", ".pgm", ".pbm", ".pnm", ".avif",
)
"""File extensions of the formats read_image decodes (lower case)."""
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray,
                    "torch.Tensor"]  # noqa: F821 - torch is imported lazily

_UNLIMITED = sys.maxsize


def read_image(source: ImageSource, *, max_pixels: int | None = None) -> Image.Image:
    """Decode ``source`` into a fresh, metadata-free mode-"RGB" PIL image.

    ``source`` may be a file path (str/PathLike), bytes/bytearray/memoryview, a
    binary file object, a PIL image (its current frame is used), a numpy array or
    a torch tensor (see :func:`to_rgb_array`). EXIF orientation is applied,
    alpha is composited onto :data:`BACKGROUND`, the first frame of animations
    is used. Raises :class:`InvalidImageError` with a user-facing message for
    anything that is not a usable image, including images over the pixel limit
    (``max_pixels``, else ``$FST_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`).
    """
    limit = resolve_max_pixels(max_pixels)
    if is_array_or_tensor(source):
        return Image.fromarray(to_rgb_array(source, max_pixels=limit), "RGB")
    if isinstance(source, Image.Image):
        return normalize(source, limit)
    image = open_bytes(read_source_bytes(source), limit)
    try:
        return normalize(image, limit)
    finally:
        image.close()


def to_rgb_array(image: ImageSource, *, max_pixels: int | None = None) -> np.ndarray:
    """Return ``image`` as a contiguous, writable HxWx3 uint8 RGB array.

    Accepts everything :func:`read_image` accepts, plus numpy arrays (HxW,
    HxWx1/2/3/4; bool, uint8, uint16, int, float16/32/64) and torch tensors
    (3xHxW, 1x3xHxW, 1xHxW; floats in [0, 1]). Raises :class:`InvalidImageError`
    for empty frames, NaN/Inf values, unsupported shapes or dtypes, or images
    over the pixel limit.
    """
    limit = resolve_max_pixels(max_pixels)
    if is_tensor(image):
        return array_to_rgb(tensor_to_hwc(image), limit, float_range="unit")
    if isinstance(image, np.ndarray):
        return array_to_rgb(image, limit, float_range="auto")
    return np.array(read_image(image, max_pixels=limit))


def save_image(image: Image.Image | np.ndarray, path: str | os.PathLike, *, quality: int = 95) -> Path:
    """Write ``image`` as PNG, JPEG or WebP (chosen by the extension of ``path``).

    The file is re-encoded from RGB pixels only (no EXIF, ICC, text chunks or
    trailing data from any source file) and written atomically: a temporary
    file in the same folder is renamed over ``path``. Missing parent folders are
    created. ``quality`` (1..100) applies to JPEG and WebP. Returns ``path``.
    """
    path = Path(path)
    image_format = SAVE_FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise InvalidImageError(
            f"cannot save {show(path.name)}: unsupported output extension {show(path.suffix) or '(none)'}; "
            f"use one of {', '.join(SAVE_FORMATS)}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer in 1..100, got {quality!r}")
    pixels = Image.fromarray(to_rgb_array(image, max_pixels=_UNLIMITED), "RGB")
    options = {} if image_format == "PNG" else {"quality": quality}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(pixels, path, image_format, options)
    return path


def image_file_problem(path: str | os.PathLike, *, max_pixels: int | None = None,
                       decode: bool = False) -> str | None:
    """Return why ``path`` is not a usable image file, or None when it looks fine.

    The default check is cheap (header, size limit and ``Image.verify()``, which
    checks PNG chunk CRCs but not JPEG data). With ``decode=True`` the image is
    fully decoded, which also catches truncated JPEG/WebP data.
    """
    limit = resolve_max_pixels(max_pixels)
    try:
        if decode:
            read_image(path, max_pixels=limit)
        else:
            verify_file(Path(path), limit)
    except InvalidImageError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - any decoder failure means "not an image"
        return f"image file is truncated or corrupt: {detail(error)}"
    return None


def is_image_file(path: str | os.PathLike, *, max_pixels: int | None = None, decode: bool = False) -> bool:
    """True when ``path`` holds a decodable image within the pixel limit (see :func:`image_file_problem`)."""
    return image_file_problem(path, max_pixels=max_pixels, decode=decode) is None


__all__ = ["BACKGROUND", "DECODE_FORMATS", "DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "MAX_FILE_BYTES", "MAX_PIXELS_ENV",
           "SAVE_FORMATS", "ImageSource", "centre_square", "fit_longer_side", "image_file_problem", "is_image_file",
           "read_image", "save_image", "scale_image", "to_rgb_array"]
