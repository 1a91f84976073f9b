"""The app's backend without Gradio: cache, registry, Hub discovery, input checks, error messages."""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app_helpers import HUB_STYLE_ID, make_models_dir, seed_hub_style
from fst import catalog
from fst.app_backend import (AppBackend, AppError, AppSettings, ColorizerUnavailable, ModelCache, ModelRegistry,
                             WebcamSession, decode_upload, is_monochrome, user_message)
from fst.errors import FstError, HubError
from fst.faststyle import FastStyle
from fst.temporal import flicker, noisy_static_frames, smoothed, temporal_blend

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "tiger.jpg"
SETTINGS = AppSettings(concurrency=1, queue_size=4, webcam_sessions=1, webcam_seconds=10, max_side=1024,
                       cache_size=4)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One thread: much faster than two on a 2-core machine that is busy with other work."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return make_models_dir(tmp_path_factory.mktemp("app_models"))


@pytest.fixture()
def backend(models, monkeypatch) -> AppBackend:
    monkeypatch.setenv("FST_MODELS_DIR", str(models))
    return AppBackend(ModelRegistry("cpu", cache_size=4, hub_timeout=5), SETTINGS)


# --------------------------------------------------------------------------- cache


def test_cache_is_a_bounded_lru():
    cache = ModelCache(lambda key: object(), max_items=2)
    first = cache.get("a")
    cache.get("b")
    assert cache.get("a") is first            # hit: "a" becomes most recent
    cache.get("c")                            # evicts the least recently used: "b"
    assert cache.keys() == ["a", "c"] and len(cache) == 2 and cache.loads == 3
    cache.get("b")
    assert "a" not in cache and cache.loads == 4


def test_cache_loads_each_key_once_under_concurrency():
    calls, start = [], threading.Barrier(8)

    def slow_loader(key):
        calls.append(key)
        time.sleep(0.2)
        return object()

    cache = ModelCache(slow_loader, max_items=4)
    results: list = []

    def worker():
        start.wait()
        results.append(cache.get("style"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == ["style"] and len(results) == 8 and len({id(r) for r in results}) == 1


def test_cache_failures_reach_every_waiter_and_are_not_cached():
    attempts = []

    def failing(key):
        attempts.append(key)
        time.sleep(0.1)
        raise HubError("hub down")

    cache = ModelCache(failing)
    errors = []
    threads = [threading.Thread(target=lambda: errors.append(_raises(cache.get, "x"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == ["hub down"] * 4 and attempts == ["x"]
    assert _raises(cache.get, "x") == "hub down" and attempts == ["x", "x"]   # retried, not cached


def _raises(fn, *args) -> str:
    try:
        fn(*args)
    except FstError as exc:
        return str(exc)
    return "no error"


# --------------------------------------------------------------------------- catalogue and registry


def test_catalogue_honours_models_dir_and_folds_lite_variants(backend, models):
    assert [e.name for e in catalog.load_catalog()] == ["starry_night", "great_wave", "starry_night_lite",
                                                        "colorizer"]
    styles = backend.registry.catalogue_styles()
    assert [s.key for s in styles] == ["starry_night", "great_wave"]
    assert all(s.thumbnail is not None and max(s.thumbnail.shape[:2]) <= 256 for s in styles)
    lite = backend.registry.load_style("starry_night", variant="lite")
    assert lite.config.outer_kernel_size == 5
    # no lite network for great_wave: the full one is used
    assert backend.registry.load_style("great_wave", variant="lite").config.outer_kernel_size == 9
    assert backend.webcam_network("auto") == "lite"   # CPU


def test_catalogue_skips_invalid_entries(tmp_path, monkeypatch, caplog):
    (tmp_path / "ok").mkdir()
    (tmp_path / "catalog.json").write_text(json.dumps({"models": [
        dict(name="ok", display_name="Ok", kind="style", folder="ok", hub_id="a/ok", extra="ignored"),
        dict(name="escape", display_name="X", kind="style", folder="../..", hub_id="a/x"),
        dict(name="bad_kind", display_name="X", kind="virus", folder="ok", hub_id="a/y"),
        "not an object",
    ]}), encoding="utf-8")
    monkeypatch.setenv("FST_MODELS_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        assert [e.name for e in catalog.load_catalog()] == ["ok"]
    assert "not inside" in caplog.text and "kind must be one of" in caplog.text


def test_bad_repo_ids_give_clear_messages(backend, hub, tmp_path, monkeypatch):
    with pytest.raises(HubError, match=r"model repository 'nobody/missing' not found on the Hub"):
        backend.registry.load_style("nobody/missing")
    with pytest.raises(AppError, match=r"not a style from the list nor a Hub repo id; use the form user/name"):
        backend.registry.load_style("not a repo!!")
    with pytest.raises(AppError, match=r"Choose a style first"):
        backend.registry.load_style("")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "some" / "folder").mkdir(parents=True)
    with pytest.raises(AppError, match=r"names a folder on the server"):
        backend.registry.load_style("some/folder")
    with pytest.raises(AppError, match=r"'colorizer' is not a style network"):
        backend.registry.load_style("colorizer")
    assert user_message(HubError("x")) == "x"
    assert "was logged" in user_message(KeyError("internal detail"))


def test_hub_discovery_and_pasted_repo_ids(backend, hub, tmp_path):
    seed_hub_style(hub, tmp_path / "repo")
    found = backend.registry.discover_hub()
    option = next(o for o in found if o.key == HUB_STYLE_ID)
    assert option.thumbnail is not None
    assert HUB_STYLE_ID in [o.key for o in backend.registry.styles()]
    model = backend.registry.load_style(HUB_STYLE_ID)
    assert isinstance(model, FastStyle) and ("style", HUB_STYLE_ID) in backend.registry.cache
    info = backend.registry.model_info(HUB_STYLE_ID)
    assert "Hub test style" in info and "mit" in info and "fast\\-style\\-transfer" in info


def test_offline_the_embedded_defaults_still_work(backend, hub, monkeypatch, caplog):
    from hub_server import patch_client_retry_sleep

    patch_client_retry_sleep(monkeypatch)
    with hub.fault("", "drop", times=None), caplog.at_level(logging.WARNING):
        assert backend.registry.discover_hub() == []
        assert "Hub discovery failed" in caplog.text
        assert [o.key for o in backend.registry.styles()] == ["starry_night", "great_wave"]
        # a catalogue name loads the embedded copy; its Hub id falls back to it
        assert isinstance(backend.registry.load_style("starry_night"), FastStyle)
        assert isinstance(backend.registry.load_style("fast-style/great-wave"), FastStyle)
        result = backend.stylize(str(EXAMPLE), "great_wave", 0.8, 128)
    assert result.after.shape == (85, 128, 3)


def test_model_info_escapes_untrusted_card_text(backend, models):
    card = models / "great_wave" / "README.md"
    card.write_text("---\nlicense: '[click](javascript:alert(1)) <img src=x onerror=alert(1)>'\n---\n",
                    encoding="utf-8")
    try:
        info = backend.registry.model_info("great_wave")
    finally:
        card.unlink()
    assert "\\[click\\]\\(javascript" in info and "\\<img" in info


# --------------------------------------------------------------------------- stylize / colorize


def test_stylize_downscales_and_validates(backend):
    result = backend.stylize(str(EXAMPLE), "starry_night", strength=1.0, max_side=240)
    assert result.before.shape == result.after.shape == (160, 240, 3)
    assert np.abs(result.after.astype(int) - result.before.astype(int)).mean() > 5
    assert "Downscaled from 480x320" in result.notes[0]
    with pytest.raises(AppError, match="strength must be a number between 0 and 1"):
        backend.stylize(str(EXAMPLE), "starry_night", strength=3)
    with pytest.raises(AppError, match="output size must be a number between 64 and 1024"):
        backend.stylize(str(EXAMPLE), "starry_night", max_side=5000)
    with pytest.raises(AppError, match="No image"):
        backend.stylize(None, "starry_night")


def test_bad_uploads_give_fst_errors(backend, bad_inputs):
    """Every corpus image either works or raises an FstError; never another exception."""
    outcomes = {}
    for path in sorted((bad_inputs / "images").iterdir()):
        try:
            decode_upload({"path": str(path)})
            outcomes[path.name] = "ok"
        except FstError as exc:
            outcomes[path.name] = str(exc)
    assert "unsupported format: SVG" in outcomes["script.svg"]
    assert "image too large (40000x40000" in outcomes["decompression_bomb_40000x40000.png"]
    assert "empty" in outcomes["zero_byte.jpg"]
    assert "truncated" in outcomes["truncated.jpg"] and "truncated" in outcomes["truncated.png"]
    assert "text" in outcomes["text_renamed.jpg"]
    assert outcomes["pixel_1x1.png"] == outcomes["aspect_1x8000.png"] == outcomes["cmyk.jpg"] == "ok"
    # tiny and extreme shapes go through the network
    one_pixel = {"path": str(bad_inputs / "images" / "pixel_1x1.png")}
    assert backend.stylize(one_pixel, "starry_night").after.shape == (1, 1, 3)
    assert backend.stylize(str(bad_inputs / "images" / "aspect_8000x1.png"), "starry_night",
                           max_side=512).after.shape == (1, 512, 3)


def test_colorize(backend, bad_inputs):
    gray = str(bad_inputs / "images" / "gray_L.jpg")
    result = backend.colorize(gray)
    assert result.after.shape == result.before.shape and not is_monochrome(result.after)
    with pytest.raises(AppError, match="already has colours"):
        backend.colorize(str(EXAMPLE))
    recolored = backend.colorize(str(EXAMPLE), recolor=True, then_style="great_wave", strength=0.5)
    assert recolored.after.shape == (320, 480, 3)


def test_colorize_bounds_the_resolution(models, monkeypatch):
    monkeypatch.setenv("FST_MODELS_DIR", str(models))
    settings = AppSettings(**{**SETTINGS.__dict__, "colorize_max_pixels": 120 * 80})
    result = AppBackend(ModelRegistry("cpu"), settings).colorize(str(EXAMPLE), recolor=True)
    assert result.after.shape == (80, 120, 3) and "Downscaled from 480x320 to 120x80" in result.notes[0]


def test_monochrome_detection_accepts_sepia():
    gray = np.asarray(Image.open(EXAMPLE).convert("L"), dtype=np.float32)[..., None]
    sepia = np.clip(gray * np.array([1.07, 0.74, 0.43]), 0, 255).astype(np.uint8)
    assert is_monochrome(sepia) and is_monochrome(np.repeat(gray, 3, 2).astype(np.uint8))
    assert not is_monochrome(np.asarray(Image.open(EXAMPLE)))


def test_device_dependent_defaults(backend, monkeypatch):
    gpu = AppSettings.from_env(torch.device("cuda"))
    cpu = AppSettings.from_env(torch.device("cpu"))
    assert gpu.concurrency > cpu.concurrency and gpu.max_side > cpu.max_side
    monkeypatch.setenv("FST_CONCURRENCY", "3")
    assert AppSettings.from_env(torch.device("cpu")).concurrency == 3
    monkeypatch.setattr(backend, "device", torch.device("cuda"))
    assert backend.webcam_network("auto") == "full" and backend.webcam_network("lite") == "lite"
    with pytest.raises(AppError, match="network must be one of auto, lite, full"):
        backend.webcam_network("huge")


def test_colorize_without_a_colorizer_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FST_MODELS_DIR", str(make_models_dir(tmp_path / "m", colorizer=False)))
    backend = AppBackend(ModelRegistry("cpu"), SETTINGS)
    with pytest.raises(ColorizerUnavailable, match="No trained colorizer is installed yet"):
        backend.colorize(str(EXAMPLE))


# --------------------------------------------------------------------------- webcam and temporal smoothing


def test_webcam_frames_skip_bad_ones_and_keep_stats(backend, bad_inputs):
    session = WebcamSession()
    frame = np.asarray(Image.open(EXAMPLE))
    for _ in range(3):
        out, session = backend.webcam_frame(frame, "starry_night", 1.0, 128, 0.5, "auto", session)
        assert out.shape == (85, 128, 3)
    for name in ("empty_0x0x3_uint8.npy", "float32_nan_inf_HW3.npy"):
        out, session = backend.webcam_frame(np.load(bad_inputs / "numpy" / name), "starry_night", 1.0, 128,
                                            0.5, "auto", session)
        assert out is None
    for name in ("gray_HW_uint8.npy", "rgba_HW4_uint8.npy", "float64_01_HW3.npy", "uint16_HW3.npy"):
        out, session = backend.webcam_frame(np.load(bad_inputs / "numpy" / name), "great_wave", 0.5, 128,
                                            0.0, "full", session)
        assert out.shape == (48, 64, 3)
    assert session.frames == 7 and session.skipped == 2 and session.fps > 0 and session.latency_ms > 0
    assert session.summary().startswith("great_wave · ") and "2 skipped" in session.summary()


def test_temporal_blend_reduces_flicker(backend):
    assert temporal_blend(np.zeros((2, 2, 3), np.uint8), None, 0.5).sum() == 0
    mixed = temporal_blend(np.full((2, 2, 3), 100, np.uint8), np.full((2, 2, 3), 200, np.uint8), 0.25)
    assert (mixed == 125).all()
    with pytest.raises(ValueError):
        temporal_blend(mixed, mixed, 1.5)
    model = backend.registry.load_style("starry_night")
    scene = np.asarray(Image.open(EXAMPLE).resize((96, 64)))
    outputs = [model.stylize(frame) for frame in noisy_static_frames(scene, 8, sigma=6.0)]
    raw, calm = flicker(outputs), flicker(smoothed(outputs, 0.6))
    assert raw > 0 and calm < 0.6 * raw
