"""Decoding untrusted bytes into a fresh RGB image: header checks first, EXIF orientation, alpha, frames."""
from __future__ import annotations

import io
import logging
import re
import struct
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from ..errors import InvalidImageError
from .arrays import array_to_uint8, flatten_alpha
from .identify import DECODE_FORMATS, corrupt_message, describe_unidentified, detail, sniff_image_format
from .sources import check_pixels, read_source_bytes, too_large_message

logger = logging.getLogger(__name__)

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


@lru_cache(maxsize=1)
def _decode_formats() -> tuple[str, ...]:
    Image.init()  # registers every plugin; we then only *use* the allowed ones
    return tuple(name for name in DECODE_FORMATS if name in Image.OPEN)


def open_bytes(data: bytes, limit: int) -> Image.Image:
    """Image.open restricted to DECODE_FORMATS, after checking the declared size."""
    if data.startswith(_PNG_SIGNATURE):
        data = _png_without_metadata(data)
    _check_header_size(data, limit)
    try:
        image = Image.open(io.BytesIO(data), formats=_decode_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImageError(_bomb_message(data, error, limit)) from None
    except UnidentifiedImageError:
        raise InvalidImageError(describe_unidentified(data)) from None
    except Exception as error:  # noqa: BLE001 - plugins raise many types on bad headers
        kind = sniff_image_format(data) or "unknown format"
        raise InvalidImageError(corrupt_message(kind, error)) from None
    try:
        check_pixels(image.size, limit)
        if image.format == "PNG" and not _png_has_end(data):
            # Pillow decodes a PNG cut after its last pixel row; the manifest calls that truncated.
            raise InvalidImageError(corrupt_message("PNG", ValueError("the file ends before the IEND chunk")))
    except InvalidImageError:
        image.close()
        raise
    return image


def _check_header_size(data: bytes, limit: int) -> None:
    """Our limit first, so Pillow's bomb warning/error never fires below it and nothing is decoded."""
    if data.startswith(_ICO_MAGIC):  # Pillow decodes an icon while "opening" it
        for size in _ico_entry_sizes(data):
            check_pixels(size, limit)
        return
    size = _probe_size(data)
    if size is not None:
        check_pixels(size, limit)


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
    message = too_large_message(*(size or (None, None)), min(limit, pillow_cap),
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


def normalize(image: Image.Image, limit: int) -> Image.Image:
    """Load the current frame and return a fresh RGB image (upright, flattened, metadata-free)."""
    check_pixels(image.size, limit)
    _note_extra_frames(image)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImageError(too_large_message(*image.size, limit)) from None
    except MemoryError:
        raise InvalidImageError(
            f"image too large to decode in the available memory ({image.size[0]}x{image.size[1]}); "
            "downscale it") from None
    except Exception as error:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, ...
        raise InvalidImageError(corrupt_message(image.format or "image", error)) from None
    check_pixels(image.size, limit)  # ICO & co. may only learn the real size while loading
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
        logger.warning("ignoring unreadable EXIF metadata: %s", detail(error))
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION_FIX else 1


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> mode RGB, alpha composited onto BACKGROUND."""
    mode = image.mode
    try:
        if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float samples
            gray = array_to_uint8(np.asarray(image), "auto")
            return Image.fromarray(gray, "L").convert("RGB")
        if _has_alpha(image):
            if mode == "La":  # premultiplied; Pillow has no La -> LA conversion
                luma, alpha = image.split()
                image = Image.merge("RGBa", (luma, luma, luma, alpha))
            return flatten_alpha(image.convert("RGBA"))
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
            f"cannot convert colour mode {mode} to RGB ({detail(error)}); re-save the image as 8-bit RGB") from None
    raise InvalidImageError(f"unsupported colour mode {mode}; re-save the image as 8-bit RGB PNG or JPEG")


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return True
    palette = getattr(image, "palette", None) if image.mode == "P" else None
    return palette is not None and palette.mode == "RGBA"


def verify_file(path: Path, limit: int) -> None:
    """Header, size limit and Image.verify() without decoding pixels (for scanning training folders)."""
    with open_bytes(read_source_bytes(path), limit) as image:
        image.verify()
