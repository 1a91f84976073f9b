"""fst.imageio against the bad-inputs corpus, plus generated variants of each category.

Every ``image_upload,colorize`` and ``webcam`` row of the corpus manifest is checked
for its expected outcome. Because the held-back evaluation set has *other* files of
the same categories, each category is also exercised with generated files (other
formats, cut points, modes, dtypes) so a fix cannot be specific to one sample.
"""
from __future__ import annotations

import csv
import functools
import io
import logging
import os
import random
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # also runnable with --noconftest
    sys.path.insert(0, str(REPO_ROOT))

from fst import imageio  # noqa: E402
from fst.errors import InvalidImageError  # noqa: E402
from fst.inference import from_uint8_array, to_uint8_array  # noqa: E402
from fst.imageio import (  # noqa: E402
    BACKGROUND, centre_square, fit_longer_side, is_image_file, read_image, save_image, scale_image, to_rgb_array,
)

BAD_INPUTS = (REPO_ROOT.parent / "shared" / "data" / "bad_inputs").resolve()
IMAGES = BAD_INPUTS / "images"
OUR_TARGETS = {"image_upload,colorize", "webcam"}


def _manifest_rows() -> list[dict]:
    manifest = BAD_INPUTS / "manifest.csv"
    if not manifest.is_file():
        return []
    with open(manifest, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["applies_to"] in OUR_TARGETS]


ROWS = _manifest_rows()


def test_corpus_is_present():
    assert ROWS, f"bad-inputs corpus not found at {BAD_INPUTS}"
    assert len(ROWS) >= 32


# --------------------------------------------------------------------------- helpers


def raw(path: Path | bytes) -> Image.Image:
    """Pillow's own decode of the first frame (reference values for the handled cases)."""
    image = Image.open(io.BytesIO(path if isinstance(path, bytes) else path.read_bytes()))  # no open file left
    image.load()
    return image


def load(source, **kw) -> np.ndarray:
    """read_image + the invariants every handled case must satisfy."""
    image = read_image(source, **kw)
    assert image.mode == "RGB"
    assert image.info == {}, "metadata must not be carried over"
    assert not image.getexif(), "EXIF must not be carried over"
    return np.asarray(image).astype(int)


def expect_error(source, *keywords: str, **kw) -> str:
    with pytest.raises(InvalidImageError) as info:
        to_rgb_array(source, **kw) if isinstance(source, np.ndarray) else read_image(source, **kw)
    message = str(info.value)
    for keyword in keywords:
        assert keyword.lower() in message.lower(), f"{keyword!r} not in {message!r}"
    assert "Traceback" not in message
    return message


def composite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None].astype(float) / 255
    return rgb.astype(float) * a + np.array(BACKGROUND, float) * (1 - a)


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def pattern(w: int = 40, h: int = 30) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x * 3 + y * 5) % 256], -1)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


QUADRANTS = {"top-left": (255, 0, 0), "top-right": (0, 255, 0),
             "bottom-left": (0, 0, 255), "bottom-right": (255, 255, 0)}


def assert_quadrants(arr: np.ndarray) -> None:
    h, w = arr.shape[:2]
    centres = {"top-left": (h // 4, w // 4), "top-right": (h // 4, 3 * w // 4),
               "bottom-left": (3 * h // 4, w // 4), "bottom-right": (3 * h // 4, 3 * w // 4)}
    for name, (y, x) in centres.items():
        assert np.abs(arr[y, x] - QUADRANTS[name]).max() <= 12, f"{name} is {arr[y, x]}"


# --------------------------------------------------------------------------- per-category checks


def check_reference(path: Path, row: dict) -> None:
    arr = load(path)
    assert arr.shape == (64, 96, 3)
    assert (arr == np.asarray(raw(path).convert("RGB"))).all()
    assert_quadrants(arr)


def check_corrupt(path: Path, row: dict) -> None:
    if path.stat().st_size == 0:
        message = expect_error(path, "empty", "0 bytes")
    else:
        message = expect_error(path, "truncated or corrupt")
    assert "upload" in message or "re-export" in message  # says what to do
    assert not is_image_file(path, decode=True)


def check_not_an_image(path: Path, row: dict) -> None:
    expect_error(path, "not a supported image", "detected:")
    if "text" in row["what_it_is"].lower():
        expect_error(path, "detected: text")


def check_active_content(path: Path, row: dict) -> None:
    message = expect_error(path, "unsupported format")
    if path.suffix.lower() == ".svg":
        assert "SVG (vector)" in message and "PNG/JPEG" in message
    assert "<script" not in message
    assert not is_image_file(path)


def check_bomb(path: Path, row: dict) -> None:
    result = run_bomb_subprocess(path)
    assert result["read_image"].startswith("ERR image too large"), result
    assert "> max" in result["read_image"]
    w, h = raw_header_size(path)
    assert f"{w}x{h}" in result["read_image"]


def check_geometry(path: Path, row: dict) -> None:
    # Geometry is the network's business: any aspect ratio / tiny size decodes as-is.
    arr = load(path)
    expected = np.asarray(raw(path).convert("RGB"))
    assert arr.shape == expected.shape and (arr == expected).all()


def check_decoded_like_pillow(path: Path, row: dict) -> np.ndarray:
    """Handled case without alpha: same pixels as Pillow's own RGB decode of frame 0."""
    arr = load(path)
    reference = raw(path)
    assert arr.shape[:2] == (reference.height, reference.width)
    if reference.mode in ("RGB", "L", "CMYK", "YCbCr", "1"):
        assert (arr == np.asarray(reference.convert("RGB"))).all()
    return arr


def check_mode(path: Path, row: dict) -> None:
    reference = raw(path)
    arr = load(path)
    assert arr.shape[:2] == (reference.height, reference.width)
    name = path.name
    if reference.mode == "CMYK":
        check_cmyk(arr)
    elif reference.mode.startswith("I"):
        check_gray16(arr, reference)
    elif reference.mode in ("LA", "RGBA", "PA") or "transparency" in reference.info:
        rgba = np.asarray(reference.convert("RGBA"))
        expected = composite(rgba[..., :3], rgba[..., 3])
        assert np.abs(arr - expected).max() <= 1
        if "hidden_green" in name:
            transparent = rgba[..., 3] == 0
            assert transparent.any()
            assert (arr[transparent] == BACKGROUND).all(), "hidden green exposed under alpha=0"
    elif reference.mode == "L":
        assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
        assert (arr[..., 0] == np.asarray(reference)).all()
    else:
        check_decoded_like_pillow(path, row)


def check_cmyk(arr: np.ndarray) -> None:
    # The corpus CMYK JPEG was made from the same picture as plain.bmp (lossless).
    same_picture = np.asarray(raw(IMAGES / "plain.bmp").convert("RGB")).astype(int)
    if same_picture.shape == arr.shape:
        assert np.abs(arr - same_picture).mean() < 6, "CMYK colours differ from the source picture"
        assert np.abs((255 - arr) - same_picture).mean() > 60  # i.e. definitely not inverted


def check_gray16(arr: np.ndarray, reference: Image.Image) -> None:
    src = np.asarray(reference).astype(np.float64)
    expected = np.rint(src / 257)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 0] == arr[..., 2]).all()
    assert np.abs(arr[..., 0] - expected).max() <= 1
    gray = arr[..., 0]
    assert (gray == 255).mean() <= (src >= 65535 - 128).mean() + 0.01, "values above 255 were clipped to white"
    assert len(np.unique(gray)) >= min(64, len(np.unique(src // 257))), "not a smooth gradient"
    if src.size == 128 * 64 and src.min() == 0 and src.max() == 65535:  # the corpus ramp, in raster order
        assert (np.diff(gray.ravel()) >= 0).all() and gray.flat[0] == 0 and gray.flat[-1] == 255


def check_animated(path: Path, row: dict, caplog=None) -> None:
    with caplog.at_level(logging.WARNING, logger="fst.imageio"):
        arr = load(path)
    first = raw(path)
    assert arr.shape[:2] == (first.height, first.width)
    rgba = np.asarray(first.convert("RGBA"))
    assert np.abs(arr - composite(rgba[..., :3], rgba[..., 3])).max() <= 1
    if "red, green, blue" in row["what_it_is"]:
        assert (arr == (255, 0, 0)).all(), "first frame (red) expected"
    assert any("first" in r.getMessage() for r in caplog.records), "no notice about ignored frames"


def check_exif(path: Path, row: dict, tmp_path: Path) -> None:
    arr = load(path)
    reference = np.asarray(raw(IMAGES / "reference_upright_quadrants.png").convert("RGB")).astype(int)
    assert arr.shape == reference.shape, "EXIF orientation not applied"
    assert np.abs(arr - reference).mean() < 6
    assert_quadrants(arr)
    out = save_image(read_image(path), tmp_path / "out.jpg")
    with Image.open(out) as saved:
        assert saved.size == (96, 64)
        assert 0x0112 not in saved.getexif(), "stale Orientation tag in output"


def check_format(path: Path, row: dict, caplog=None) -> None:
    reference = raw(path)
    with caplog.at_level(logging.WARNING, logger="fst.imageio"):
        arr = load(path)
    assert arr.shape[:2] == (reference.height, reference.width)  # first page / largest icon
    if reference.mode in ("RGBA", "LA", "PA"):
        rgba = np.asarray(reference.convert("RGBA"))
        assert np.abs(arr - composite(rgba[..., :3], rgba[..., 3])).max() <= 1
    else:
        assert (arr == np.asarray(reference.convert("RGB"))).all()
    if getattr(reference, "n_frames", 1) > 1:
        assert any("first" in r.getMessage() for r in caplog.records)
    if path.suffix.lower() == ".ico":
        assert reference.size == max(reference.info["sizes"])


def check_metadata(path: Path, row: dict, tmp_path: Path) -> None:
    arr = check_decoded_like_pillow(path, row)
    for name in ("out.jpg", "out.png", "out.webp"):
        out = save_image(arr.astype(np.uint8), tmp_path / name)
        data = out.read_bytes()
        assert len(data) < 100_000, "output carries the big ICC blob"
        assert b"fst-junk" not in data
        with Image.open(out) as saved:
            assert "icc_profile" not in saved.info


def check_polyglot(path: Path, row: dict, tmp_path: Path) -> None:
    arr = check_decoded_like_pillow(path, row)
    out = save_image(read_image(path), tmp_path / "out.png")
    data = out.read_bytes()
    assert b"PK\x03\x04" not in data and b"<script" not in data and b"payload" not in data
    assert data.endswith(b"IEND\xaeB`\x82")
    assert (np.asarray(raw(out)) == arr).all()


# --------------------------------------------------------------------------- webcam arrays


def check_webcam(path: Path, row: dict) -> None:
    frame = np.load(path, allow_pickle=False)
    if frame.size == 0:
        expect_error(frame, "empty frame")
        return
    if frame.dtype.kind == "f" and not np.isfinite(frame).all():
        message = expect_error(frame, "NaN/Inf")
        assert "nan_to_num" in message or "camera" in message
        return
    out = to_rgb_array(frame)
    assert out.dtype == np.uint8 and out.shape == frame.shape[:2] + (3,)
    assert out.flags.c_contiguous and out.flags.writeable
    assert out.std() > 10, "output must not be flat (all black/white)"
    expected = expected_webcam(frame)
    assert np.abs(out.astype(int) - expected).max() <= 1
    tensor = from_uint8_array(out)
    assert tensor.shape == (1, 3) + frame.shape[:2] and tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all() and 0 <= tensor.min() and tensor.max() <= 1


def expected_webcam(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.float64)
    if frame.dtype == np.uint16:
        f = f / 257
    elif frame.dtype.kind == "f" and f.max() <= 1.5:
        f = f * 255
    if f.ndim == 2:
        f = f[..., None]
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    if f.shape[2] == 4:
        f = composite(f[..., :3], f[..., 3])
    return np.rint(f)


CHECKS = {
    "reference": check_reference,
    "image_corrupt": check_corrupt,
    "image_not_an_image": check_not_an_image,
    "image_active_content": check_active_content,
    "image_decompression_bomb": check_bomb,
    "image_extreme_geometry": check_geometry,
    "image_mode": check_mode,
    "image_animated": check_animated,
    "image_exif_orientation": check_exif,
    "image_format": check_format,
    "image_metadata": check_metadata,
    "image_polyglot": check_polyglot,
    "webcam_array": check_webcam,
    "webcam_array_nonfinite": check_webcam,
}


@pytest.mark.parametrize("row", [pytest.param(r, marks=pytest.mark.subprocess)   # bombs are opened in a child
                                 if CHECKS.get(r["category"]) is check_bomb else r for r in ROWS],
                         ids=[r["file"] for r in ROWS])
def test_manifest_case(row: dict, tmp_path: Path, caplog) -> None:
    path = BAD_INPUTS / row["file"]
    assert path.is_file(), f"missing corpus file {path}"
    check = CHECKS.get(row["category"])
    assert check is not None, f"no check for category {row['category']!r}: add one"
    kwargs = {}
    if "tmp_path" in check.__code__.co_varnames:
        kwargs["tmp_path"] = tmp_path
    if "caplog" in check.__code__.co_varnames:
        kwargs["caplog"] = caplog
    check(path, row, **kwargs)


# --------------------------------------------------------------------------- decompression bombs (memory-capped)

BOMB_SCRIPT = textwrap.dedent(r"""
    import io, json, resource, sys, time
    sys.path.insert(0, sys.argv[1])
    from fst.imageio import read_image, is_image_file, to_rgb_array
    from fst.errors import InvalidImageError

    vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    cap = max(2 << 30, vm + (3 << 29))  # imports (torch) + 1.5 GiB: a 1.6 Gpx decode cannot fit
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    path = sys.argv[2]
    data = open(path, "rb").read()
    result, start = {}, time.monotonic()
    for name, call in [("read_image", lambda: read_image(path)),
                       ("bytes", lambda: read_image(data)),
                       ("file_object", lambda: read_image(io.BytesIO(data))),
                       ("to_rgb_array", lambda: to_rgb_array(path)),
                       ("above_pillow_cap", lambda: read_image(path, max_pixels=10**12))]:
        try:
            call()
            result[name] = "LOADED"
        except InvalidImageError as error:
            result[name] = "ERR " + str(error)
        except BaseException as error:
            result[name] = "RAW %s: %s" % (type(error).__name__, error)
    result["is_image_file"] = is_image_file(path)
    result["seconds"] = time.monotonic() - start
    result["rss_growth_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    print(json.dumps(result))
""")


def run_bomb_subprocess(path: Path) -> dict:
    import json

    proc = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(REPO_ROOT), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("read_image", "bytes", "file_object", "to_rgb_array", "above_pillow_cap"):
        assert result[name].startswith("ERR image too large"), (name, result[name])
    assert result["is_image_file"] is False
    assert result["seconds"] < 5, "rejection must come from the header, not from decoding"
    assert result["rss_growth_kb"] < 200_000, "memory grew: something was decoded"
    return result


def raw_header_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def png_stream(width: int, height: int) -> bytes:
    """1-bit PNG streamed through zlib: tiny file, huge declared size (like the corpus bomb)."""
    co = zlib.compressobj(9)
    line = b"\x00" + bytes((width + 7) // 8)
    body = b"".join(co.compress(line) for _ in range(height)) + co.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@functools.lru_cache(maxsize=1)
def header_bombs() -> dict[str, bytes]:
    """Small valid files whose header is patched to claim a gigantic size."""
    small = Image.new("RGB", (8, 8), (10, 20, 30))
    gif = bytearray(encode(small, "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    jpeg = bytearray(encode(small, "JPEG"))
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 65500, 65500)
    bmp = bytearray(encode(small, "BMP"))
    bmp[18:26] = struct.pack("<ii", 50000, 50000)
    return {"gif": bytes(gif), "jpeg": bytes(jpeg), "bmp": bytes(bmp),
            "png_100mpx": png_stream(10000, 10000)}  # between our 64M default and Pillow's 179M cap


@pytest.mark.parametrize("kind", ["gif", "jpeg", "bmp", "png_100mpx"])
def test_header_bombs_of_every_format_are_rejected_before_decoding(kind, recwarn):
    data = header_bombs()[kind]
    message = expect_error(data, "image too large", "> max", "pixels")
    assert "x" in message.split("(")[1]  # names the declared WxH
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_pixel_limit_per_call_and_env(monkeypatch):
    data = encode(pattern(40, 30), "PNG")
    expect_error(data, "image too large (40x30 = 1200 pixels > max 1000 pixels)", max_pixels=1000)
    assert read_image(data, max_pixels=1200).size == (40, 30)
    monkeypatch.setenv("FST_MAX_PIXELS", "1000")
    expect_error(data, "> max 1000", "FST_MAX_PIXELS")
    expect_error(np.zeros((30, 40, 3), np.uint8), "> max 1000")
    assert read_image(data, max_pixels=5000).size == (40, 30)  # per call beats env
    monkeypatch.setenv("FST_MAX_PIXELS", "not-a-number")  # a bad setting keeps the default
    assert read_image(data).size == (40, 30)
    with pytest.raises(ValueError):
        read_image(data, max_pixels=0)


def test_module_never_changes_pillow_globals():
    from PIL import ImageFile

    before = Image.MAX_IMAGE_PIXELS
    for path in IMAGES.iterdir():
        if "bomb" not in path.name:
            try:
                read_image(path)
            except InvalidImageError:
                pass
    assert Image.MAX_IMAGE_PIXELS == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --------------------------------------------------------------------------- corrupt / not an image, generalised


GOOD_FORMATS = {
    "PNG": {}, "JPEG": {"quality": 90}, "JPEG-progressive": {"quality": 90, "progressive": True},
    "GIF": {}, "WEBP": {"quality": 80}, "BMP": {}, "TIFF": {}, "ICO": {"sizes": [(32, 32)]},
}


@pytest.mark.parametrize("fmt", list(GOOD_FORMATS))
@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.6, 0.9])
def test_truncated_files_of_every_format(fmt, fraction):
    data = encode(pattern(48, 32), fmt.split("-")[0], **GOOD_FORMATS[fmt])
    assert read_image(data).size == raw(data).size
    cut = data[: max(1, int(len(data) * fraction))]
    expect_error(cut, "truncated or corrupt")


def test_fuzzed_files_give_an_image_or_a_clear_error():
    rng = random.Random(1234)
    samples = [encode(pattern(), f.split("-")[0], **kw) for f, kw in GOOD_FORMATS.items()]
    for data in samples:
        for _ in range(60):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            if rng.random() < 0.3:
                mutated = mutated[: rng.randrange(1, len(mutated))]
            try:
                image = read_image(bytes(mutated))
            except InvalidImageError as error:
                assert str(error)
            else:
                assert image.mode == "RGB" and image.info == {}


NOT_IMAGES = {
    "html": (b"<!DOCTYPE html>\n<html><body><script>alert(1)</script></body></html>", "detected: HTML"),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "unsupported format: PDF"),
    "svg_doctype": (b'<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
                    "unsupported format: SVG (vector)"),
    "svg_bom_comment": (b"\xef\xbb\xbf<!-- drawing -->\n<svg width='1' height='1'></svg>", "SVG (vector)"),
    "json": (b'{"image": "not really"}\n', "detected: text"),
    "utf8_text": ("Bonjour, 画像 ici\n".encode() * 20, "detected: text"),
    "utf16_text": ("just text".encode("utf-16"), "detected: text"),
    "zip": (b"PK\x03\x04" + bytes(200), "detected: ZIP"),
    "heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "unsupported format: HEIC"),
    "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "unsupported format: PostScript"),
    "random": (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not a supported image"),
    "png_magic_only": (b"\x89PNG\r\n\x1a\n", "truncated or corrupt (PNG)"),
    "whitespace": (b"   \n\n", "detected: text"),
}


@pytest.mark.parametrize("case", list(NOT_IMAGES))
def test_non_images_are_named(case, tmp_path):
    data, keyword = NOT_IMAGES[case]
    expect_error(data, keyword)
    path = tmp_path / "upload.jpg"  # the extension lies; detection is by content
    path.write_bytes(data)
    expect_error(path, keyword)
    assert not is_image_file(path)


def test_unusual_sources_give_clear_errors(tmp_path):
    expect_error(tmp_path / "missing.png", "not found")
    expect_error(tmp_path, "folder")
    expect_error(b"", "empty (0 bytes)")
    expect_error(io.BytesIO(b""), "empty")
    expect_error(io.StringIO("text"), "binary mode")
    expect_error(12345, "unsupported image source")
    if os.path.exists("/dev/zero"):
        expect_error("/dev/zero", "not a regular file")
    weird = tmp_path / "bad\nname.png"
    message = expect_error(weird, "not found")
    assert "\n" not in message  # control characters are escaped in messages


# --------------------------------------------------------------------------- modes, generalised


def _mode_cases() -> dict[str, tuple[bytes | Image.Image, str]]:
    grad16 = np.linspace(0, 65535, 256).astype(np.uint16).reshape(1, 256).repeat(8, 0)
    rgb = pattern(32, 16)
    rgba = np.asarray(rgb.convert("RGBA")).copy()
    rgba[:, :8, 3] = 0
    rgba[:, 8:16, 3] = 128
    return {
        "tiff_I;16": (encode(Image.fromarray(grad16), "TIFF"), "gray16"),
        "mem_I;16B": (Image.frombytes("I;16B", (256, 8), grad16.astype(">u2").tobytes()), "gray16"),
        "tiff_float_unit": (encode(Image.fromarray((grad16 / 65535).astype(np.float32), "F"), "TIFF"), "gray16"),
        "tiff_int32": (encode(Image.fromarray(grad16.astype(np.int32), "I"), "TIFF"), "gray16"),
        "tiff_cmyk": (encode(rgb.convert("CMYK"), "TIFF"), "rgb"),
        "jpeg_cmyk_adobe": (encode(rgb.convert("CMYK"), "JPEG", quality=95), "rgb"),
        "png_rgb_trns": (encode(rgb, "PNG", transparency=tuple(int(v) for v in np.asarray(rgb)[0, 0])), "alpha"),
        "png_rgba": (encode(Image.fromarray(rgba, "RGBA"), "PNG"), "alpha"),
        "webp_rgba": (encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True), "alpha"),
        "gif_transparent": (encode(rgb.convert("P"), "GIF", transparency=0), "alpha"),
        "mem_PA": (Image.fromarray(rgba, "RGBA").convert("PA"), "alpha"),
        "mem_RGBa": (Image.fromarray(rgba, "RGBA").convert("RGBa"), "alpha"),
        "mem_LA": (Image.fromarray(rgba, "RGBA").convert("LA"), "alpha"),
        "mem_1bit": (rgb.convert("1"), "gray"),
        "mem_YCbCr": (rgb.convert("YCbCr"), "rgb"),
        "mem_RGBX": (rgb.convert("RGBX"), "rgb"),
    }


@pytest.mark.parametrize("case", list(_mode_cases()))
def test_modes_of_every_kind(case):
    source, expectation = _mode_cases()[case]
    arr = load(source)
    reference = source if isinstance(source, Image.Image) else raw(source)
    if expectation == "gray16":
        row = arr[0, :, 0]
        assert row[0] <= 1 and row[-1] >= 254 and (np.diff(row) >= 0).all() and len(np.unique(row)) > 200
    elif expectation == "rgb":
        assert np.abs(arr - np.asarray(pattern(32, 16))).mean() < 4  # CMYK not inverted, YCbCr right
    elif expectation == "alpha":
        rgba_ref = np.asarray(reference.convert("RGBA"))
        assert np.abs(arr - composite(rgba_ref[..., :3], rgba_ref[..., 3])).max() <= 2
        assert (arr[rgba_ref[..., 3] == 0] == BACKGROUND).all()
    elif expectation == "gray":
        assert (arr[..., 0] == arr[..., 2]).all()


def test_lab_image_is_colour_managed():
    from PIL import ImageCms

    red = Image.new("RGB", (4, 4), (200, 30, 30))
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    arr = load(ImageCms.applyTransform(red, to_lab))
    assert np.abs(arr[0, 0] - (200, 30, 30)).max() <= 4


def test_exif_orientations_all_eight(tmp_path):
    upright = np.asarray(raw(IMAGES / "reference_upright_quadrants.png").convert("RGB")).astype(int)
    fix = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_270}  # inverse of what exif_transpose applies
    for orientation in range(1, 9):
        stored = Image.fromarray(upright.astype(np.uint8))
        if orientation in fix:
            stored = stored.transpose(fix[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        for fmt in ("JPEG", "PNG", "WEBP"):
            data = encode(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt != "PNG" else {}))
            arr = load(data)
            assert arr.shape == upright.shape, (orientation, fmt)
            assert_quadrants(arr)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow's own notice
def test_broken_exif_is_ignored():
    data = bytearray(encode(pattern(), "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"))
    assert load(bytes(data)).shape == (30, 40, 3)


def test_multiframe_formats_use_the_first_frame(caplog):
    frames = [Image.new("RGBA", (16, 8), c) for c in ((255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255))]
    for fmt in ("PNG", "WEBP", "GIF", "TIFF"):
        caplog.clear()
        kwargs = {"lossless": True} if fmt == "WEBP" else {}
        data = encode(frames[0] if fmt != "GIF" else frames[0].convert("RGB"), fmt, save_all=True,
                      append_images=frames[1:] if fmt != "GIF" else [f.convert("RGB") for f in frames[1:]], **kwargs)
        with caplog.at_level(logging.WARNING, logger="fst.imageio"):
            arr = load(data)
        assert (arr == (255, 0, 0)).all(), fmt
        assert any("first" in r.getMessage() for r in caplog.records), fmt


# --------------------------------------------------------------------------- sources: bytes, file objects, PIL, arrays, tensors


HANDLED = sorted(p.name for p in IMAGES.iterdir()) if IMAGES.is_dir() else []
HANDLED = [n for n in HANDLED if n.split(".")[0] not in
           ("zero_byte", "truncated", "text_renamed", "script", "decompression_bomb_40000x40000")]


@pytest.mark.parametrize("name", HANDLED)
def test_every_source_kind_gives_the_same_pixels(name):
    path = IMAGES / name
    expected = load(path)
    data = path.read_bytes()
    assert (load(data) == expected).all()
    assert (load(bytearray(data)) == expected).all()
    assert (load(io.BytesIO(data)) == expected).all()
    assert (load(str(path)) == expected).all()
    with open(path, "rb") as f:
        assert (load(f) == expected).all()
    with Image.open(path) as opened:  # an un-normalised PIL image
        assert (load(opened) == expected).all()
    array = to_rgb_array(path)
    assert array.dtype == np.uint8 and array.flags.c_contiguous and array.flags.writeable
    assert (array == expected).all()
    assert (to_rgb_array(array) == expected).all()
    tensor = from_uint8_array(array)
    assert tensor.shape == (1, 3) + expected.shape[:2] and tensor.dtype == torch.float32
    assert (to_rgb_array(tensor) == expected).all() and (to_rgb_array(tensor[0]) == expected).all()
    assert (to_uint8_array(tensor) == expected).all()
    assert is_image_file(path) and is_image_file(path, decode=True)


ARRAYS_OK = {
    "uint8_HW3": (np.full((4, 6, 3), 7, np.uint8), 7),
    "bool_HW": (np.ones((4, 6), bool), 255),
    "uint16_HW1": (np.full((4, 6, 1), 65535, np.uint16), 255),
    "int32_0_255": (np.full((4, 6, 3), 200, np.int32), 200),
    "int64_16bit": (np.full((4, 6, 3), 257 * 100, np.int64), 100),
    "float16_unit": (np.full((4, 6, 3), 0.5, np.float16), 128),
    "float32_0_255": (np.full((4, 6, 3), 128.0, np.float32), 128),
    "float64_unit": (np.full((4, 6, 3), 1.0), 255),
    "gray_alpha_HW2": (np.stack([np.full((4, 6), 10, np.uint8), np.zeros((4, 6), np.uint8)], -1), 255),
    "rgba_opaque": (np.full((4, 6, 4), 255, np.uint8) * np.array([0, 1, 1, 1], np.uint8), None),
    "non_contiguous": (np.full((4, 12, 3), 9, np.uint8)[:, ::2], 9),
    "big_endian_uint16": (np.full((4, 6, 3), 65535, ">u2"), 255),
}


@pytest.mark.parametrize("case", list(ARRAYS_OK))
def test_arrays_of_every_dtype(case):
    array, value = ARRAYS_OK[case]
    out = to_rgb_array(array)
    assert out.shape == array.shape[:2] + (3,) and out.dtype == np.uint8 and out.flags.c_contiguous
    if value is not None:
        assert (out == value).all(), out[0, 0]
    image = read_image(array)
    assert image.mode == "RGB" and (np.asarray(image) == out).all()


def test_float_arrays_with_other_ranges_are_rescaled_not_clipped():
    out = to_rgb_array(np.linspace(-1, 1, 24 * 3).reshape(4, 6, 3))
    assert out.min() == 0 and out.max() == 255


ARRAYS_BAD = {
    "nan": (np.full((4, 6, 3), np.nan, np.float32), "NaN/Inf"),
    "inf_float16": (np.full((4, 6, 3), np.inf, np.float16), "NaN/Inf"),
    "empty_0x0x3": (np.zeros((0, 0, 3), np.uint8), "empty frame (0x0"),
    "empty_no_channels": (np.zeros((4, 6, 0), np.uint8), "empty frame"),
    "empty_2d": (np.zeros((0, 6), np.float32), "empty frame"),
    "five_channels": (np.zeros((4, 6, 5), np.uint8), "expected an HxWx3 RGB image, got shape (4, 6, 5)"),
    "channels_first": (np.zeros((3, 48, 64), np.uint8), "channels-first"),
    "one_dim": (np.zeros(10, np.uint8), "got shape (10,)"),
    "four_dim": (np.zeros((1, 4, 6, 3), np.uint8), "got shape (1, 4, 6, 3)"),
    "complex": (np.zeros((4, 6, 3), np.complex64), "unsupported array dtype complex64"),
    "object": (np.zeros((4, 6, 3), object), "unsupported array dtype object"),
    "strings": (np.zeros((4, 6, 3), "U1"), "unsupported array dtype"),
}


@pytest.mark.parametrize("case", list(ARRAYS_BAD))
def test_bad_arrays_give_clear_errors(case):
    array, keyword = ARRAYS_BAD[case]
    expect_error(array, keyword)
    with pytest.raises(InvalidImageError):
        read_image(array)


def test_tensors():
    t = torch.rand(3, 8, 10)
    expected = np.rint(t.permute(1, 2, 0).numpy() * 255)
    assert np.abs(to_rgb_array(t).astype(int) - expected).max() <= 1
    assert (to_rgb_array(t[None]) == to_rgb_array(t)).all()
    assert (to_rgb_array(t.bfloat16()).shape == (8, 10, 3))
    assert (to_rgb_array(t.requires_grad_()).shape == (8, 10, 3))
    assert (to_rgb_array(torch.rand(1, 8, 10)).shape == (8, 10, 3))
    assert (to_rgb_array(torch.full((3, 8, 10), 2.0)) == 255).all()  # tensors are [0, 1]: clamped
    with pytest.raises(InvalidImageError, match="batch of 2"):
        to_rgb_array(torch.rand(2, 3, 8, 10))
    with pytest.raises(InvalidImageError, match="NaN/Inf"):
        to_rgb_array(torch.full((3, 8, 10), float("nan")))
    with pytest.raises(InvalidImageError, match="empty frame"):
        to_rgb_array(torch.zeros(3, 0, 10))
    with pytest.raises(InvalidImageError, match="NaN/Inf"):
        to_rgb_array(torch.full((1, 3, 8, 10), float("inf")))
    out = to_uint8_array(torch.tensor([-1.0, 0.5, 7.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2))
    assert out.shape == (2, 2, 3) and tuple(out[0, 0]) == (0, 128, 255)  # clamped and rounded
    back = from_uint8_array(np.asarray(Image.new("RGB", (5, 4), (255, 0, 51))))
    assert back.shape == (1, 3, 4, 5) and torch.allclose(back[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.2]))


def test_resize_family_keeps_aspect_and_sizes():
    wide = Image.new("RGB", (300, 100), (10, 20, 30))
    assert fit_longer_side(wide, 60).size == (60, 20)
    assert fit_longer_side(wide, 600).size == (600, 200)       # upscales too
    assert scale_image(Image.new("RGB", (1, 9)), 0.1).size == (1, 1)   # never below one pixel
    assert scale_image(wide, 1.0) is wide
    gradient = Image.fromarray(np.tile(np.arange(300, dtype=np.uint8)[None, :, None], (100, 1, 3)))
    square = centre_square(gradient, 50)
    assert square.size == (50, 50)
    assert abs(int(np.asarray(square)[25, 25, 0]) - 150) <= 3   # the middle of the gradient, not its left end


# --------------------------------------------------------------------------- save_image


def test_save_image_strips_metadata_and_is_atomic(tmp_path, monkeypatch):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "SecretCam"
    source = pattern(40, 30)
    with_meta = encode(source, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=b"x" * 5000,
                       comment=b"private comment")
    for name in ("a.jpg", "b.JPEG", "c.png", "d.webp", "nested/dir/e.png"):
        out = save_image(read_image(with_meta), tmp_path / name, quality=90)
        assert out == tmp_path / name
        data = out.read_bytes()
        assert b"SecretCam" not in data and b"private comment" not in data and b"xxxxxxxx" not in data
        with Image.open(out) as saved:
            assert saved.size == (30, 40)  # orientation baked into the pixels
            assert not saved.getexif() and "icc_profile" not in saved.info
    # an un-normalised PIL image and an array also work
    save_image(Image.open(io.BytesIO(with_meta)), tmp_path / "f.png")
    save_image(np.zeros((4, 6, 3), np.uint8), tmp_path / "g.png")
    with pytest.raises(InvalidImageError, match="unsupported output extension"):
        save_image(source, tmp_path / "x.gif")
    with pytest.raises(ValueError):
        save_image(source, tmp_path / "x.jpg", quality=0)
    # a failed write leaves the old file intact and no temporary files behind
    target = tmp_path / "keep.png"
    save_image(source, target)
    before = target.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", explode)
    with pytest.raises(OSError):
        save_image(np.zeros((4, 6, 3), np.uint8), target)
    assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_is_image_file_and_extensions(tmp_path):
    assert ".jpg" in imageio.IMAGE_EXTENSIONS and ".png" in imageio.IMAGE_EXTENSIONS
    truncated = IMAGES / "truncated.jpg"
    # the cheap check does not decode JPEG data; decode=True does
    assert not is_image_file(truncated, decode=True)
    assert imageio.image_file_problem(truncated, decode=True).startswith("image file is truncated")
    assert not is_image_file(IMAGES / "truncated.png")  # PNG CRC/verify catches it cheaply
    assert not is_image_file(tmp_path / "missing.png")
    assert not is_image_file(IMAGES / "zero_byte.jpg")
    assert is_image_file(IMAGES / "plain.bmp")


def ico_with_embedded(image_bytes: bytes) -> bytes:
    """An ICO whose directory claims 256x256 but whose embedded image is anything."""
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(image_bytes), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + image_bytes


def test_icon_bombs_are_rejected_from_the_embedded_header(recwarn):
    # Pillow decodes an icon inside Image.open, so the real size must be read first.
    expect_error(ico_with_embedded(png_stream(12000, 12000)), "image too large (12000x12000")
    dib = struct.pack("<IiiHHIIiiII", 40, 30000, 2 * 30000, 1, 32, 0, 0, 0, 0, 0, 0)
    expect_error(ico_with_embedded(dib + bytes(64)), "image too large (30000x30000")
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]
    small = ico_with_embedded(encode(pattern(20, 10), "PNG"))
    assert read_image(small).size == (20, 10)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_huge_invalid_icc_and_text_metadata_are_ignored(fmt, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    junk = b"\x00\x08\x00\x00" + b"fst-junk-icc-profile-" * 100_000  # 2.1 MB, not a real profile
    kwargs = {"icc_profile": junk}
    if fmt == "PNG":  # Pillow alone refuses text/ICC chunks that inflate past 1 MB
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", "x" * 3_000_000, zip=True)
        kwargs["pnginfo"] = info
    data = encode(pattern(), fmt, **kwargs)
    arr = load(data)
    assert np.abs(arr - np.asarray(pattern())).mean() < 4
    out = save_image(read_image(data), tmp_path / f"out.{fmt.lower()}".replace("tiff", "png"))
    assert b"fst-junk" not in out.read_bytes() and out.stat().st_size < 50_000
