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

import io
import logging
import operator
import os
import re
import secrets
import stat
import struct
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Union

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from . import settings
from .errors import InvalidImageError
# The default pixel limit (width x height, 64 000 000: e.g. 8000 x 8000) and the variable that changes it.
from .settings import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV  # noqa: F401 - DEFAULT_MAX_PIXELS: part of this API

logger = logging.getLogger(__name__)

MAX_FILE_BYTES: int = 256 * 1024 * 1024
"""Encoded files larger than this are refused before being read."""
BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited onto this colour (white)."""

# Pillow plugin ids we let decode untrusted data (no EPS: it runs Ghostscript).
DECODE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "ICO", "PPM", "AVIF")
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".bmp",
    ".tif", ".tiff", ".ico", ".ppm", ".pgm", ".pbm", ".pnm", ".avif",
)
"""File extensions of the formats read_image decodes (lower case)."""
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray,
                    "torch.Tensor"]

_UNLIMITED = sys.maxsize
_UPLOAD_HINT = "upload a PNG or JPEG image"
_ORIENTATION_TAG = 0x0112
# Same table as PIL.ImageOps.exif_transpose: EXIF orientation -> fix for the stored pixels.
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow inflates these with hard size limits and fails the whole image when one is
# too big (e.g. a junk multi-MB ICC profile); their content never reaches our output.
_PNG_METADATA_CHUNKS = (b"iCCP", b"tEXt", b"zTXt", b"iTXt")
_ICO_MAGIC = b"\x00\x00\x01\x00"
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIMPLE_TO_RGB_MODES = ("1", "L", "P", "RGBX", "CMYK", "YCbCr", "HSV")


# --------------------------------------------------------------------------- public API


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
    limit = _resolve_max_pixels(max_pixels)
    if _is_array_or_tensor(source):
        return Image.fromarray(to_rgb_array(source, max_pixels=limit), "RGB")
    if isinstance(source, Image.Image):
        return _normalize(source, limit)
    image = _open_bytes(_read_source_bytes(source), limit)
    try:
        return _normalize(image, limit)
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
    limit = _resolve_max_pixels(max_pixels)
    if _is_tensor(image):
        return _array_to_rgb(_tensor_to_hwc(image), limit, float_range="unit")
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, limit, float_range="auto")
    return np.array(read_image(image, max_pixels=limit))


def image_to_tensor(img: ImageSource) -> Any:
    """Return a 1x3xHxW float32 torch tensor in [0, 1] for a PIL image or array."""
    import torch  # lazy: decoding must not pay for (or depend on) importing torch

    array = to_rgb_array(img)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float().div_(255.0).contiguous()


def tensor_to_image(tensor: Any) -> Image.Image:
    """Return an RGB PIL image for a 1x3xHxW / 3xHxW float tensor in [0, 1] (clamped, rounded)."""
    if not _is_tensor(tensor):
        raise InvalidImageError(f"expected a torch tensor, got {type(tensor).__name__}")
    array = _tensor_to_hwc(tensor)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidImageError(
            "image tensor contains NaN/Inf values (the model produced non-finite output); "
            "check the model weights and the input")
    return Image.fromarray(_array_to_rgb(array, _UNLIMITED, float_range="unit"), "RGB")


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
            f"cannot save {_show(path.name)}: unsupported output extension {_show(path.suffix) or '(none)'}; "
            f"use one of {', '.join(SAVE_FORMATS)}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer in 1..100, got {quality!r}")
    pixels = Image.fromarray(to_rgb_array(image, max_pixels=_UNLIMITED), "RGB")
    options = {} if image_format == "PNG" else {"quality": quality}
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(pixels, path, image_format, options)
    return path


def image_file_problem(path: str | os.PathLike, *, max_pixels: int | None = None,
                       decode: bool = False) -> str | None:
    """Return why ``path`` is not a usable image file, or None when it looks fine.

    The default check is cheap (header, size limit and ``Image.verify()``, which
    checks PNG chunk CRCs but not JPEG data). With ``decode=True`` the image is
    fully decoded, which also catches truncated JPEG/WebP data.
    """
    limit = _resolve_max_pixels(max_pixels)
    try:
        if decode:
            read_image(path, max_pixels=limit)
        else:
            _verify_file(Path(path), limit)
    except InvalidImageError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - any decoder failure means "not an image"
        return f"image file is truncated or corrupt: {_detail(error)}"
    return None


def is_image_file(path: str | os.PathLike, *, max_pixels: int | None = None, decode: bool = False) -> bool:
    """True when ``path`` holds a decodable image within the pixel limit (see :func:`image_file_problem`)."""
    return image_file_problem(path, max_pixels=max_pixels, decode=decode) is None


# --------------------------------------------------------------------------- limits


def _resolve_max_pixels(max_pixels: int | None) -> int:
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


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"image has no pixels ({width}x{height}); {_UPLOAD_HINT}")
    if width * height > limit:
        raise InvalidImageError(_too_large_message(width, height, limit))


def _too_large_message(width: int | None, height: int | None, limit: int, pixels: int | None = None) -> str:
    dims = f"{width}x{height} = {width * height}" if width and height else f"{pixels or 'too many'}"
    return (f"image too large ({dims} pixels > max {limit} pixels); downscale it, "
            f"or raise the limit with max_pixels= or the {MAX_PIXELS_ENV} environment variable")


# --------------------------------------------------------------------------- reading sources


def _read_source_bytes(source: Any) -> bytes:
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
        raise InvalidImageError(f"the uploaded file is empty (0 bytes); {_UPLOAD_HINT}")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImageError(_file_too_big_message(len(data)))
    return data


def _read_path(source: str | os.PathLike) -> bytes:
    try:
        path = Path(source)
        info = path.stat()
    except FileNotFoundError:
        raise InvalidImageError(f"image file not found: {_show(source)}") from None
    except (OSError, ValueError) as error:  # ValueError: embedded NUL byte
        raise InvalidImageError(f"cannot read image file {_show(source)}: {_detail(error)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidImageError(f"{_show(path)} is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):  # FIFOs and devices could block or never end
        raise InvalidImageError(f"{_show(path)} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise InvalidImageError(_file_too_big_message(info.st_size))
    try:
        with open(path, "rb") as file:
            return file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise InvalidImageError(f"cannot read image file {_show(path)}: {_detail(error)}") from None


def _read_stream(stream: Any) -> bytes:
    try:
        data = stream.read(MAX_FILE_BYTES + 1)
    except Exception as error:  # noqa: BLE001 - arbitrary file-like objects
        raise InvalidImageError(f"could not read the uploaded file: {_detail(error)}") from None
    if isinstance(data, str):
        raise InvalidImageError("the file object returned text; open the image in binary mode ('rb')")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidImageError(f"the file object returned {type(data).__name__}, not bytes")
    return bytes(data)


def _file_too_big_message(size: int) -> str:
    return (f"image file too large ({size / 2**20:.0f} MiB > max {MAX_FILE_BYTES // 2**20} MiB); "
            "upload a smaller or more compressed image")


# --------------------------------------------------------------------------- decoding


@lru_cache(maxsize=1)
def _decode_formats() -> tuple[str, ...]:
    Image.init()  # registers every plugin; we then only *use* the allowed ones
    return tuple(name for name in DECODE_FORMATS if name in Image.OPEN)


def _open_bytes(data: bytes, limit: int) -> Image.Image:
    """Image.open restricted to DECODE_FORMATS, after checking the declared size."""
    if data.startswith(_PNG_SIGNATURE):
        data = _png_without_metadata(data)
    _check_header_size(data, limit)
    try:
        image = Image.open(io.BytesIO(data), formats=_decode_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImageError(_bomb_message(data, error, limit)) from None
    except UnidentifiedImageError:
        raise InvalidImageError(_describe_unidentified(data)) from None
    except Exception as error:  # noqa: BLE001 - plugins raise many types on bad headers
        kind = _sniff_image_format(data) or "unknown format"
        raise InvalidImageError(_corrupt_message(kind, error)) from None
    try:
        _check_pixels(image.size, limit)
        if image.format == "PNG" and not _png_has_end(data):
            # Pillow decodes a PNG cut after its last pixel row; the manifest calls that truncated.
            raise InvalidImageError(_corrupt_message("PNG", ValueError("the file ends before the IEND chunk")))
    except InvalidImageError:
        image.close()
        raise
    return image


def _check_header_size(data: bytes, limit: int) -> None:
    """Our limit first, so Pillow's bomb warning/error never fires below it and nothing is decoded."""
    if data.startswith(_ICO_MAGIC):  # Pillow decodes an icon while "opening" it
        for size in _ico_entry_sizes(data):
            _check_pixels(size, limit)
        return
    size = _probe_size(data)
    if size is not None:
        _check_pixels(size, limit)


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each PNG chunk up to IEND; a cut last chunk has end > len(data)."""
    position = 8
    while position + 12 <= len(data):
        kind = data[position + 4:position + 8]
        end = position + 12 + int.from_bytes(data[position:position + 4], "big")
        yield kind, position, end
        if kind == b"IEND":
            return
        position = end


def _png_without_metadata(data: bytes) -> bytes:
    """The PNG with its ICC/text chunks removed (other chunks copied verbatim, CRCs stay valid)."""
    chunks = list(_png_chunks(data))
    if not any(kind in _PNG_METADATA_CHUNKS for kind, _, _ in chunks):
        return data
    kept = [data[start:end] for kind, start, end in chunks if kind not in _PNG_METADATA_CHUNKS]
    tail = data[chunks[-1][2]:] if chunks[-1][0] != b"IEND" else b""  # keep a cut tail cut
    return data[:8] + b"".join(kept) + tail


def _png_has_end(data: bytes) -> bool:
    """True when the chunks reach a complete IEND (bytes after it are ignored, never used)."""
    return any(kind == b"IEND" and end <= len(data) for kind, _, end in _png_chunks(data))


def _bomb_message(data: bytes, error: BaseException, limit: int) -> str:
    """Pillow refused the header; report the real size when we can read it."""
    pillow_cap = Image.MAX_IMAGE_PIXELS or limit
    if not isinstance(error, Image.DecompressionBombWarning):  # warning at 1x, error at 2x Pillow's limit
        pillow_cap *= 2
    size = _probe_size(data)
    match = re.search(r"\((\d+) pixels\)", str(error))
    message = _too_large_message(*(size or (None, None)), min(limit, pillow_cap),
                                 int(match.group(1)) if match else None)
    if pillow_cap < limit:  # raising our limit would not help: Pillow's own guard refused it
        message = message.split("; ")[0] + " (Pillow's decompression-bomb limit); downscale it"
    return message


def _probe_size(data: bytes) -> tuple[int, int] | None:
    """Header size via the plugin class itself (which, unlike Image.open, decodes nothing and checks nothing)."""
    prefix = data[:16]
    for name in _decode_formats():
        if name == "ICO":  # its _open decodes pixels; icons are checked by _ico_entry_sizes
            continue
        factory, accept = Image.OPEN[name]
        try:
            accepted = accept(prefix) if accept else True
            if not accepted or isinstance(accepted, str):  # str: "recognised but not supported"
                continue
            with factory(io.BytesIO(data)) as image:
                return image.size
        except Exception:  # noqa: BLE001 - only used to word an error message
            continue
    return None


def _ico_entry_sizes(data: bytes) -> list[tuple[int, int]]:
    """Real sizes of the images embedded in an ICO (the directory's 1-byte sizes can lie)."""
    (count,) = struct.unpack_from("<H", data, 4) if len(data) >= 6 else (0,)
    sizes = []
    for index in range(count):
        entry = 6 + 16 * index
        if entry + 16 > len(data):
            break
        offset = struct.unpack_from("<I", data, entry + 12)[0]
        embedded = data[offset:offset + 24]
        if embedded.startswith(_PNG_SIGNATURE) and len(embedded) >= 24:
            sizes.append(struct.unpack_from(">II", embedded, 16))
        elif len(embedded) >= 12:  # BITMAPINFOHEADER: height counts the XOR and AND masks
            width, height = struct.unpack_from("<ii", embedded, 4)
            sizes.append((max(abs(width), 1), max(abs(height) // 2, 1)))
    return sizes


def _normalize(image: Image.Image, limit: int) -> Image.Image:
    """Load the current frame and return a fresh RGB image (upright, flattened, metadata-free)."""
    _check_pixels(image.size, limit)
    _note_extra_frames(image)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImageError(_too_large_message(*image.size, limit)) from None
    except MemoryError:
        raise InvalidImageError(
            f"image too large to decode in the available memory ({image.size[0]}x{image.size[1]}); "
            "downscale it") from None
    except Exception as error:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, ...
        raise InvalidImageError(_corrupt_message(image.format or "image", error)) from None
    _check_pixels(image.size, limit)  # ICO & co. may only learn the real size while loading
    fix = _ORIENTATION_FIX.get(_exif_orientation(image))
    rgb = _to_rgb(image)
    # Build from raw pixels so no EXIF/ICC/text/trailing data can ride along.
    fresh = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    return fresh.transpose(fix) if fix is not None else fresh


def _note_extra_frames(image: Image.Image) -> None:
    try:
        animated = bool(getattr(image, "is_animated", False))
    except Exception:  # noqa: BLE001 - a broken 2nd frame must not block the 1st
        animated = False
    if animated:
        logger.warning("%s has several frames/pages: only the first one is used",
                       image.format or "image")


def _exif_orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception as error:  # noqa: BLE001 - malformed EXIF is common and harmless
        logger.warning("ignoring unreadable EXIF metadata: %s", _detail(error))
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION_FIX else 1


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> mode RGB, alpha composited onto BACKGROUND."""
    mode = image.mode
    try:
        if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float samples
            gray = _array_to_uint8(np.asarray(image), "auto")
            return Image.fromarray(gray, "L").convert("RGB")
        if _has_alpha(image):
            if mode == "La":  # premultiplied; Pillow has no La -> LA conversion
                luma, alpha = image.split()
                image = Image.merge("RGBa", (luma, luma, luma, alpha))
            return _flatten_alpha(image.convert("RGBA"))
        if mode == "RGB":
            return image
        if mode in _SIMPLE_TO_RGB_MODES:  # CMYK: Pillow already undid Adobe inversion when decoding
            return image.convert("RGB")
        if mode == "LAB":  # Image.convert would treat L*a*b* values as RGB
            transform = ImageCms.buildTransform(
                ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
            return ImageCms.applyTransform(image, transform)
    except InvalidImageError:
        raise
    except Exception as error:  # noqa: BLE001
        raise InvalidImageError(
            f"cannot convert colour mode {mode} to RGB ({_detail(error)}); re-save the image as 8-bit RGB") from None
    raise InvalidImageError(f"unsupported colour mode {mode}; re-save the image as 8-bit RGB PNG or JPEG")


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return True
    palette = getattr(image, "palette", None) if image.mode == "P" else None
    return palette is not None and palette.mode == "RGBA"


def _flatten_alpha(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _verify_file(path: Path, limit: int) -> None:
    """Header, size limit and Image.verify() without decoding pixels (for scanning training folders)."""
    with _open_bytes(_read_source_bytes(path), limit) as image:
        image.verify()


# --------------------------------------------------------------------------- messages


def _corrupt_message(kind: str, error: BaseException) -> str:
    return (f"image file is truncated or corrupt ({kind}): {_detail(error)}; "
            "re-export or re-upload the image")


def _detail(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return _show(text[:200])


def _show(value: Any) -> str:
    """str(value) with control characters escaped (safe for logs and UI)."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


# Signatures of formats we decode: if Pillow could not identify such a file, it is damaged.
_DECODABLE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"\x00\x00\x01\x00", "ICO"),
)
# Formats we recognise but do not decode.
_UNSUPPORTED_MAGIC = (
    (b"%PDF-", "PDF document"), (b"%!PS", "PostScript/EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "Photoshop PSD"), (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"), (b"\xffO\xffQ", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"), (b"\xff\x0a", "JPEG XL"), (b"qoif", "QOI"),
    (b"DDS ", "DDS texture"), (b"v/1\x01", "OpenEXR"), (b"#?RADIANCE", "Radiance HDR"), (b"#?RGBE", "Radiance HDR"),
)
_NON_IMAGE_MAGIC = (
    (b"PK\x03\x04", "ZIP archive"), (b"PK\x05\x06", "ZIP archive"), (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x7fELF", "executable (ELF)"), (b"Rar!", "RAR archive"), (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "Microsoft Office document"), (b"SQLite format 3\x00", "SQLite database"),
    (b"ID3", "MP3 audio"), (b"OggS", "Ogg media"), (b"\x1aE\xdf\xa3", "Matroska/WebM video"),
    (b"fLaC", "FLAC audio"), (b"\xca\xfe\xba\xbe", "Java class / Mach-O binary"),
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def _sniff_image_format(data: bytes) -> str | None:
    """Name of a format we decode, from its signature (for error messages)."""
    for magic, name in _DECODABLE_MAGIC:
        if data.startswith(magic) or (len(data) >= 2 and magic.startswith(data)):  # or cut inside the magic
            return name
    if data[:4] == b"RIFF" and (data[8:12] == b"WEBP" or len(data) < 12):
        return "WebP"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if data[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6") and data[2:3].isspace():
        return "PPM"
    return None


def _describe_unidentified(data: bytes) -> str:
    """User-facing message for bytes that Pillow (restricted to DECODE_FORMATS) could not open."""
    if not data:
        return f"the uploaded file is empty (0 bytes); {_UPLOAD_HINT}"
    known = _sniff_image_format(data)
    if known:
        return _corrupt_message(known, ValueError("the header could not be parsed"))
    unsupported = _unsupported_kind(data)
    if unsupported:
        return f"unsupported format: {unsupported} - upload PNG/JPEG"
    return f"not a supported image (detected: {_non_image_kind(data)}); {_UPLOAD_HINT}"


def _unsupported_kind(data: bytes) -> str | None:
    for magic, name in _UNSUPPORTED_MAGIC:
        if data.startswith(magic):
            return name
    if data[128:132] == b"DICM":
        return "DICOM"
    if data.endswith(b"TRUEVISION-XFILE.\x00"):
        return "TGA"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIC/HEIF (e.g. iPhone photo; export it as JPEG)"
    markup = _markup_kind(data[:4096])
    return "SVG (vector)" if markup == "svg" else None


def _non_image_kind(data: bytes) -> str:
    for magic, name in _NON_IMAGE_MAGIC:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return "MP4/QuickTime video"
    if data[:4] == b"RIFF":
        return {b"WAVE": "WAV audio", b"AVI ": "AVI video"}.get(data[8:12], "RIFF container")
    head = data[:4096]
    markup = _markup_kind(head)
    if markup == "html":
        return "HTML document"
    if markup == "xml":
        return "XML document"
    if _looks_like_text(head):
        return "text"
    if data[:2] == b"MZ":
        return "Windows executable"
    if data[:2] == b"BM":
        return "damaged or unsupported BMP"
    return "unknown binary data"


def _markup_kind(head: bytes) -> str | None:
    """'svg', 'html', 'xml' or None for the first bytes of a file."""
    if not _looks_like_text(head):
        return None
    text = head.decode("utf-8", "ignore").lstrip("\ufeff \t\r\n").lower()
    if not text.startswith("<"):
        return None
    if "<svg" in text and "<html" not in text:
        return "svg"
    if any(tag in text for tag in ("<!doctype html", "<html", "<head", "<body", "<script")):
        return "html"
    if "<svg" in text:
        return "svg"
    return "xml" if text.startswith("<?xml") else None


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 byte-order marks
        return True
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.reason != "unexpected end of data":  # only tolerate a character cut at the end
            return False
    controls = sum(1 for byte in head if byte < 32 and byte not in b"\t\n\r\f\b\x1b")
    return controls * 100 <= len(head)


# --------------------------------------------------------------------------- arrays and tensors


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")  # no tensor can exist unless torch was imported
    return torch is not None and isinstance(value, torch.Tensor)


def _is_array_or_tensor(value: Any) -> bool:
    return isinstance(value, np.ndarray) or _is_tensor(value)


def _tensor_to_hwc(tensor: Any) -> np.ndarray:
    """CxHxW / 1xCxHxW / HxW tensor -> HxWxC numpy array (no copy when possible)."""
    import torch

    shape = tuple(tensor.shape)
    t = tensor.detach()
    if t.ndim == 4:
        if shape[0] != 1:
            raise InvalidImageError(f"expected a single image, got a batch of {shape[0]} (shape {shape})")
        t = t[0]
    if t.ndim == 3:
        if t.shape[0] in (1, 2, 3, 4):
            t = t.permute(1, 2, 0)  # CxHxW, the torch convention
        elif t.shape[2] not in (1, 2, 3, 4):  # else it already is HxWxC
            raise InvalidImageError(f"expected a 3xHxW or 1x3xHxW image tensor, got shape {shape}")
    elif t.ndim != 2:
        raise InvalidImageError(f"expected a 3xHxW or 1x3xHxW image tensor, got shape {shape}")
    if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
        t = t.float()  # numpy has no bfloat16
    try:
        return t.cpu().numpy()
    except (TypeError, RuntimeError) as error:
        raise InvalidImageError(f"unsupported tensor dtype {tensor.dtype}: {_detail(error)}") from None


def _array_to_rgb(array: np.ndarray, limit: int, *, float_range: str) -> np.ndarray:
    """Validate an image array and return it as contiguous HxWx3 uint8."""
    if array.dtype.kind not in "buif":
        raise InvalidImageError(
            f"unsupported array dtype {array.dtype}; expected uint8 (or bool, uint16, int, float) pixels")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or (array.size and array.shape[2] not in (1, 2, 3, 4)):
        hint = ""
        if array.ndim == 3 and array.shape[2] > 4:
            hint = f" ({array.shape[2]} channels; 1, 2, 3 or 4 are supported)"
            if array.shape[0] in (1, 3, 4) and min(array.shape[1:]) > 16:
                hint = "; it looks channels-first (CxHxW): use array.transpose(1, 2, 0)"
        raise InvalidImageError(f"expected an HxWx3 RGB image, got shape {tuple(array.shape)}{hint}")
    height, width, channels = array.shape
    if array.size == 0:
        raise InvalidImageError(
            f"empty frame ({width}x{height}, array shape {tuple(array.shape)}): no pixel data; "
            "skip this frame (the camera may not be ready)")
    if width * height > limit:
        raise InvalidImageError(_too_large_message(width, height, limit))
    pixels = _array_to_uint8(array, float_range)
    if channels == 3:
        return np.ascontiguousarray(pixels)
    if channels == 1:
        return np.ascontiguousarray(np.repeat(pixels, 3, axis=2))
    mode = "LA" if channels == 2 else "RGBA"
    flat = _flatten_alpha(Image.fromarray(np.ascontiguousarray(pixels), mode).convert("RGBA"))
    return np.array(flat)


def _array_to_uint8(array: np.ndarray, float_range: str) -> np.ndarray:
    """Scale any numeric pixel array to uint8 (see the module docstring for the rules)."""
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return array.astype(np.uint8) * 255
    if kind == "u" and itemsize == 1:
        return array
    if kind == "u" and itemsize == 2:
        return _scale_16bit(array)
    if kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255:
            return array.astype(np.uint8)
        if low >= 0 and high <= 65535:
            return _scale_16bit(array)
        return _rescale(array, low, high)
    return _float_to_uint8(array, float_range)


def _scale_16bit(array: np.ndarray) -> np.ndarray:
    # round(v / 257) in integer arithmetic: 0 -> 0, 65535 -> 255, no clipping
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _float_to_uint8(array: np.ndarray, float_range: str) -> np.ndarray:
    values = array.astype(np.float32, copy=False) if array.dtype.itemsize < 4 else array
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(values.size - np.count_nonzero(finite))
        raise InvalidImageError(
            f"frame contains NaN/Inf values ({bad} of {values.size} values); check the camera/driver, "
            "or clean the array (e.g. np.nan_to_num) before passing it")
    low, high = float(values.min()), float(values.max())
    if float_range == "unit" or (low >= -0.5 and high <= 1.5):
        scaled = values * 255.0
    elif low >= -0.5 and high <= 255.5:
        scaled = values
    else:
        logger.warning("float pixels span [%g, %g], neither [0, 1] nor [0, 255]: rescaling min-max", low, high)
        return _rescale(values, low, high)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _rescale(array: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(array.shape, np.uint8)
    scaled = (array.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- writing


def _atomic_save(image: Image.Image, path: Path, image_format: str, options: dict) -> None:
    """Encode into a temp file next to ``path`` then os.replace it (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(tmp, flags, 0o666)  # 0o666 & ~umask, like a normal open()
    try:
        with os.fdopen(descriptor, "wb") as file:
            image.save(file, format=image_format, **options)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
