"""The app in a subprocess, called through its API with gradio_client: /stylize and /colorize."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_helpers import HUB_STYLE_ID, shared_app
from fst.color import rgb_to_lab_np

pytestmark = pytest.mark.subprocess   # the app runs in its own process

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def app(hub, tmp_path_factory):
    return shared_app(hub, tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def gray_photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "old_photo.png"
    Image.open(EXAMPLES / "horses.jpg").convert("L").save(path)
    return path


def _predict(client, *args, api_name: str):
    from gradio_client import handle_file

    return client.predict(handle_file(str(args[0])), *args[1:], api_name=api_name)


def _error(client, *args, api_name: str) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        _predict(client, *args, api_name=api_name)
    return str(info.value)


def test_only_the_documented_endpoints_are_public(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert sorted(api["named_endpoints"]) == ["/colorize", "/sheet", "/stylize", "/video"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/stylize"]["parameters"]]
    assert params == ["image", "style", "strength", "max_side", "preserve_colors", "style_scale", "blend_with", "mix",
                      "style_image"]
    assert [p["parameter_name"] for p in api["named_endpoints"]["/sheet"]["parameters"]] == ["image"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/colorize"]["parameters"]]
    assert params == ["image", "recolor", "then_style", "strength"]


@pytest.mark.parametrize("style", ["starry_night", HUB_STYLE_ID])
def test_stylize(client, style):
    source = EXAMPLES / "tiger.jpg"
    out = Path(_predict(client, source, style, 1.0, 256, False, api_name="/stylize"))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == (171, 256, 3)
    expected = np.asarray(Image.open(source).resize((256, 171)))
    assert np.abs(result.astype(int) - expected.astype(int)).mean() > 5


def test_stylize_mixes_two_styles(client):
    from gradio_client import handle_file

    def styled(**choice) -> np.ndarray:
        out = client.predict(image=handle_file(str(EXAMPLES / "tiger.jpg")), strength=1.0, max_side=128,
                             style_scale=1.0, api_name="/stylize", **choice)
        return np.asarray(Image.open(out).convert("RGB")).astype(float)

    first, second = styled(style="starry_night"), styled(style="great_wave")
    assert np.array_equal(styled(style="starry_night", blend_with="", mix=0.5), first)   # defaults: no mix
    mixed = styled(style="starry_night", blend_with="great_wave", mix=0.5)
    assert np.abs(mixed - (first + second) / 2).max() <= 1 and np.abs(mixed - first).mean() > 2
    assert "mix must be a number between 0 and 1" in _error(client, EXAMPLES / "tiger.jpg", "starry_night", 1.0, 128,
                                                             False, 1.0, "great_wave", 2.0, api_name="/stylize")


def test_stylize_with_any_painting(client, bad_inputs):
    from gradio_client import handle_file

    source, painting = EXAMPLES / "tiger.jpg", DATA / "styles" / "udnie.jpg"
    plain = np.asarray(Image.open(_predict(client, source, "starry_night", 1.0, 256, False, 1.0, "", 0.0,
                                           api_name="/stylize")).convert("RGB"))
    out = _predict(client, source, "starry_night", 1.0, 256, False, 1.0, "", 0.0, handle_file(str(painting)),
                   api_name="/stylize")
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == (171, 256, 3) and not np.array_equal(result, plain)
    assert "The painting cannot be used" in _error(client, source, "starry_night", 1.0, 256, False, 1.0, "", 0.0,
                                                   handle_file(str(bad_inputs / "images" / "truncated.jpg")),
                                                   api_name="/stylize")


def test_the_sheet_shows_the_photo_in_every_style(client):
    out = _predict(client, EXAMPLES / "tiger.jpg", api_name="/sheet")
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert sheet.shape == (2 * (128 + 22), 2 * 192, 3)   # the photo, two styles and the Hub style: 2x2 cells


def test_stylize_preserving_colours_keeps_the_hue(client):
    out = _predict(client, EXAMPLES / "castle.jpg", "great_wave", 1.0, 128, True, 2.0, api_name="/stylize")
    result = np.asarray(Image.open(out).convert("RGB")).astype(float)
    source = np.asarray(Image.open(EXAMPLES / "castle.jpg").resize((85, 128))).astype(float)
    assert result.shape == source.shape
    # blue sky stays blue: the mean colour balance is the photo's
    def blue_minus_red(image):
        return np.sign(image[..., 2].mean() - image[..., 0].mean())

    assert blue_minus_red(result) == blue_minus_red(source)


def test_colorize_full_resolution_then_stylize(client, gray_photo):
    out = _predict(client, gray_photo, False, "", 1.0, api_name="/colorize")
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == (320, 480, 3)
    assert np.linalg.norm(rgb_to_lab_np(result)[..., 1:], axis=-1).mean() > 1.0     # colours were added
    styled = _predict(client, gray_photo, False, "great_wave", 0.7, api_name="/colorize")
    assert np.asarray(Image.open(styled)).shape == (320, 480, 3)


def test_the_api_schema_takes_any_style_string(client):
    api = client.view_api(print_info=False, return_format="dict")
    for endpoint, name in (("/stylize", "style"), ("/colorize", "then_style")):
        parameter = next(p for p in api["named_endpoints"][endpoint]["parameters"] if p["parameter_name"] == name)
        assert parameter["type"]["type"] == "string" and "enum" not in parameter["type"]
        assert parameter["python_type"]["type"] == "str"                      # not a Literal of the defaults
        assert "starry_night" in parameter["type"]["examples"]                # the defaults are offered
        assert "Hub repo id" in parameter["python_type"]["description"]


def test_the_readme_snippet_colorizes_a_sepia_photo(client, tmp_path):
    from gradio_client import handle_file
    from PIL import ImageOps

    sepia = tmp_path / "old_photo.jpg"
    ImageOps.colorize(Image.open(EXAMPLES / "horses.jpg").convert("L"), "#2b1a0e", "#f5e6c8").save(sepia)
    colour = client.predict(image=handle_file(str(sepia)), recolor=False, then_style="",
                            strength=1.0, api_name="/colorize")
    assert np.asarray(Image.open(colour)).shape == (320, 480, 3)


def test_polyglot_output_is_reencoded(client, bad_inputs):
    out = Path(_predict(client, bad_inputs / "images" / "polyglot_png_zip.png", "starry_night", 1.0, 512, False,
                        api_name="/stylize"))
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") and b"PK\x03\x04" not in data and b"<script" not in data


@pytest.mark.parametrize("name, api, expected", [
    ("script.svg", "/stylize", "unsupported format: SVG"),
    ("zero_byte.jpg", "/stylize", "empty"),
    ("truncated.jpg", "/colorize", "truncated"),
    ("text_renamed.jpg", "/stylize", "text"),
    ("decompression_bomb_40000x40000.png", "/colorize", "image too large (40000x40000"),
])
def test_bad_uploads_give_clear_errors(client, bad_inputs, name, api, expected):
    args = ("starry_night", 1.0, 512, False) if api == "/stylize" else (False, "", 1.0)
    assert expected in _error(client, bad_inputs / "images" / name, *args, api_name=api)


def test_bad_requests_give_clear_errors(client, app):
    photo = EXAMPLES / "tiger.jpg"
    assert "'nobody/missing' not found on the Hub" in _error(client, photo, "nobody/missing", 1.0, 256, False,
                                                             api_name="/stylize")
    assert "use the form user/name" in _error(client, photo, "../../etc", 1.0, 256, False, api_name="/stylize")
    assert "strength must be a number between 0 and 1" in _error(client, photo, "starry_night", 7, 256, False,
                                                                 api_name="/stylize")
    assert "already has colours" in _error(client, photo, False, "", 1.0, api_name="/colorize")
    assert "Traceback" not in app.log()   # user errors are messages, not logged tracebacks


def test_server_files_cannot_be_passed_as_uploads(app):
    """Gradio refuses file payloads outside its upload folder (we rely on that with preprocess=False)."""
    import json
    import urllib.request

    from gradio_client import Client

    # every parameter given (from the API's own description), so the refusal is about the file
    parameters = Client(app.url, verbose=False).view_api(print_info=False, return_format="dict")
    defaults = [p["parameter_default"] for p in parameters["named_endpoints"]["/stylize"]["parameters"][1:]]
    body = json.dumps({"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
                                *defaults]}).encode()
    request = urllib.request.Request(app.url + "gradio_api/call/stylize", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        event = json.load(answer)["event_id"]
    with urllib.request.urlopen(f"{app.url}gradio_api/call/stylize/{event}", timeout=30) as answer:
        stream = answer.read().decode()
    assert "event: error" in stream and "root:" not in stream and "image.png" not in stream
