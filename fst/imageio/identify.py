"""What a file that is not a decodable image is (SVG, HTML, HEIC, ...), and the error messages that say so."""
from __future__ import annotations

import os
from typing import Any

# Pillow plugin ids we let decode untrusted data (no EPS: it runs Ghostscript).
DECODE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "ICO", "PPM", "AVIF")

UPLOAD_HINT = "upload a PNG or JPEG image"


def corrupt_message(kind: str, error: BaseException) -> str:
    return (f"image file is truncated or corrupt ({kind}): {detail(error)}; "
            "re-export or re-upload the image")


def detail(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return show(text[:200])


def show(value: Any) -> str:
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


def sniff_image_format(data: bytes) -> str | None:
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


def describe_unidentified(data: bytes) -> str:
    """User-facing message for bytes that Pillow (restricted to DECODE_FORMATS) could not open."""
    if not data:
        return f"the uploaded file is empty (0 bytes); {UPLOAD_HINT}"
    known = sniff_image_format(data)
    if known:
        return corrupt_message(known, ValueError("the header could not be parsed"))
    unsupported = _unsupported_kind(data)
    if unsupported:
        return f"unsupported format: {unsupported} - upload PNG/JPEG"
    return f"not a supported image (detected: {_non_image_kind(data)}); {UPLOAD_HINT}"


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
