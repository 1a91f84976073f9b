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
from fst import app_backend, catalog
from fst.app_backend import (AppBackend, AppError, AppSettings, ColorizerUnavailable, ModelCache, ModelRegistry,
                             WebcamSession, decode_upload, is_monochrome, user_message)
from fst.errors import FstError, HubError, NonFiniteOutputError
from fst.faststyle import FastStyle
from fst.temporal import flicker, noisy_static_frames, smoothed, temporal_blend

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "tiger.jpg"
EXAMPLES = EXAMPLE.parent
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


def test_catalogue_honours_models_dir_and_folds_webcam_networks(backend, models):
    assert [e.name for e in catalog.load_catalog()] == ["starry_night", "great_wave", "starry_night_rt",
                                                        "colorizer", "arbitrary"]
    styles = backend.registry.catalogue_styles()   # the any-painting network is not a style of the list
    assert [s.key for s in styles] == ["starry_night", "great_wave"]
    assert all(s.thumbnail is not None and max(s.thumbnail.shape[:2]) <= 256 for s in styles)
    webcam = backend.registry.load_style("starry_night", variant="webcam")
    assert webcam.config.outer_kernel_size == 5
    # no webcam network for great_wave: the full one is used
    assert backend.registry.load_style("great_wave", variant="webcam").config.outer_kernel_size == 9
    assert backend.webcam_network("auto") == "webcam"   # CPU


@pytest.mark.parametrize("field", [{"webcam": "fast_one"}, {"lite": "fast_one"}, {}])
def test_a_webcam_network_is_found_by_its_field_its_former_name_or_the_rt_suffix(tmp_path, monkeypatch,
                                                                                 caplog, field):
    webcam = "fast_one" if field else "slow_rt"
    for folder in ("slow", webcam):
        (tmp_path / folder).mkdir()
    (tmp_path / "catalog.json").write_text(json.dumps({"models": [
        dict(name="slow", display_name="Slow", kind="style", folder="slow", hub_id="a/slow", **field),
        dict(name=webcam, display_name="Fast", kind="style", folder=webcam, hub_id="a/fast"),
    ]}), encoding="utf-8")
    monkeypatch.setenv("FST_MODELS_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        registry = ModelRegistry("cpu")
        assert [s.key for s in registry.catalogue_styles()] == ["slow"]
        assert registry.resolve_style("slow", "webcam")[0] == webcam
        assert registry.resolve_style("slow", "full")[0] == "slow"
    assert "unknown keys" not in caplog.text


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


def test_brush_size_enlarges_strokes_in_the_image_and_webcam_tabs(backend):
    plain = backend.stylize(str(EXAMPLE), "starry_night", max_side=240)
    large = backend.stylize(str(EXAMPLE), "starry_night", max_side=240, style_scale=2.5)
    assert large.after.shape == plain.after.shape
    assert np.abs(large.after.astype(int) - plain.after.astype(int)).mean() > 3
    with pytest.raises(AppError, match="brush size must be a number between 1 and 4"):
        backend.stylize(str(EXAMPLE), "starry_night", style_scale=0)
    frame = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    styled, session = backend.webcam_frame(frame, "starry_night", resolution=128, style_scale=2)
    assert styled.shape[:2] == (85, 128) and session.frames == 1
    with pytest.raises(AppError, match="brush size"):
        backend.webcam_frame(frame, "starry_night", style_scale="big")


def test_a_network_that_outputs_nan_gives_a_clear_message(backend, hub, tmp_path):
    damaged = FastStyle(channels=4, num_res_blocks=1)
    with torch.no_grad():   # finite weights (they load) whose activations overflow: inf - inf = NaN
        damaged.net.conv1.conv2d.weight.fill_(3e38)
    damaged.save_pretrained(tmp_path / "damaged")
    hub.seed_repo("fst-tests/damaged-style", tmp_path / "damaged")
    with pytest.raises(NonFiniteOutputError) as info:
        backend.stylize(str(EXAMPLE), "fst-tests/damaged-style", max_side=64)
    assert user_message(info.value) == ("the model produced non-finite output (NaN/Inf): its weights are damaged "
                                        "or come from a diverged training run; re-download or retrain it")


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
    assert result.after.shape == result.before.shape
    assert mean_chroma(result.after) > 1.0 > mean_chroma(result.before)    # colours were added
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
    assert backend.webcam_network("auto") == "full" and backend.webcam_network("webcam") == "webcam"
    with pytest.raises(AppError, match="network must be one of auto, webcam, full"):
        backend.webcam_network("huge")


def test_colorize_without_a_colorizer_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FST_MODELS_DIR", str(make_models_dir(tmp_path / "m", colorizer=False)))
    backend = AppBackend(ModelRegistry("cpu"), SETTINGS)
    with pytest.raises(ColorizerUnavailable, match="No trained colorizer is installed yet"):
        backend.colorize(str(EXAMPLE))


# --------------------------------------------------------------------------- webcam and temporal smoothing


def run_governor(governor, seconds_per_pixel, frames, ceiling=1024, camera=(720, 1280), choice="a"):
    """Feed ``governor`` frames whose styling costs ``seconds_per_pixel``; returns the sides chosen."""
    sides = []
    for _ in range(frames):
        side = governor.next_side(ceiling, choice)
        scale = min(1.0, side / max(camera))
        height, width = round(camera[0] * scale), round(camera[1] * scale)
        governor.record(seconds_per_pixel * height * width, height, width, camera_side=max(camera), ceiling=ceiling)
        sides.append(governor.side)
    return sides


def test_the_webcam_resolution_settles_at_the_largest_side_that_keeps_the_frame_rate():
    from fst.app_backend.pacing import HEADROOM, MIN_SIDE, ResolutionGovernor

    governor = ResolutionGovernor(target_fps=15)
    cost = 1e-7   # seconds per pixel: the budget (0.85 / 15 s) holds 567k pixels, a 16:9 frame of 1004 px
    sides = run_governor(governor, cost, 30)
    assert sides[0] == 256 and sides[-1] == sides[-2] == 992   # grew to the largest 32-px step that fits
    assert all(b <= a * 1.25 + 32 for a, b in zip(sides, sides[1:]))   # no overshoot while growing
    height, width = 558, 992
    assert cost * height * width <= HEADROOM / 15
    slower = run_governor(governor, 4 * cost, 12)   # frames 4x slower (another user, a bigger network)
    assert slower[0] < 992 and slower[-1] == 480   # shrinks from the next frame on, to half the side
    assert run_governor(governor, cost, 40, ceiling=512)[-1] == 512   # the user's slider is a ceiling
    assert run_governor(governor, cost, 40, camera=(240, 320))[-1] == 320   # no larger than the camera
    assert run_governor(governor, 1.0, 5)[-1] == MIN_SIDE   # a hopeless machine still streams, small
    fresh = run_governor(governor, cost, 1, choice="b")
    assert fresh == [256]   # a new style starts over: its first frame (loading, warm-up) is not measured


def test_adaptive_webcam_frames_report_their_resolution(backend):
    frame = np.zeros((480, 640, 3), np.uint8)
    session = None
    for _ in range(4):
        styled, session = backend.webcam_frame(frame, "starry_night", resolution=320, session=session, adapt=True)
    assert max(styled.shape[:2]) == session.side <= 320 and session.governor.measured == 4
    assert f"{session.side} px (adaptive, 15 fps target)" in session.summary()
    styled, session = backend.webcam_frame(frame, "starry_night", resolution=192, session=session)
    assert max(styled.shape[:2]) == 192 and session.governor is None and "192 px ·" in session.summary()


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


# --------------------------------------------------------------------------- Hub failures and old photos


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean CIE a*b* distance from gray: 0 for a gray photo."""
    from fst.color import rgb_to_lab_np

    return float(np.linalg.norm(rgb_to_lab_np(rgb)[..., 1:], axis=-1).mean())


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_hub_download_takes_no_compute_slot(backend, hub, tmp_path, monkeypatch):
    monkeypatch.setenv("FST_CONCURRENCY", "2")
    monkeypatch.setenv("FST_HUB_DOWNLOADS", "3")
    assert AppSettings.from_env(torch.device("cpu")).request_slots == 5   # what app.py gives Gradio
    repo = seed_hub_style(hub, tmp_path / "slow", "fst-tests/slow-backend-style")
    errors: list[BaseException] = []

    def slow_request() -> None:
        try:
            backend.stylize(str(EXAMPLE), repo, 1.0, 64)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with hub.fault(f"/{repo}/resolve/main/config.json", "delay", seconds=2, method="HEAD") as hold:
        thread = threading.Thread(target=slow_request)
        thread.start()
        _wait_for(lambda: hold.hits == 1, "the Hub download to start")
        assert backend.compute_slots.acquire(blocking=False)   # the only compute slot is free meanwhile
        backend.compute_slots.release()
        assert backend.stylize(str(EXAMPLE), "starry_night", 1.0, 64).after.shape == (43, 64, 3)
        assert thread.is_alive()
    thread.join(60)
    assert not errors


def test_a_failing_hub_id_is_remembered_and_answered_at_once(backend, hub):
    with pytest.raises(HubError, match="'nobody/gone' not found on the Hub") as first:
        backend.registry.load_style("nobody/gone")
    hub.clear_requests()
    start = time.perf_counter()
    with pytest.raises(HubError) as again:
        backend.registry.load_style("nobody/gone")
    assert time.perf_counter() - start < 0.2 and hub.requests == []
    assert str(again.value) == str(first.value)


def test_an_unreachable_hub_fails_fast_once_and_the_defaults_still_work(backend, dead_hub, monkeypatch):
    from fst.hub_access import HubUnreachable

    monkeypatch.setenv("FST_HUB_TIMEOUT", "1")
    dead_hub("hang")
    timings = []
    for repo in ("someone/style", "someone/style", "someone/other"):
        start = time.perf_counter()
        with pytest.raises(HubUnreachable, match=r"is unreachable \(no answer within 1 s"):
            backend.registry.load_style(repo)
        timings.append(time.perf_counter() - start)
    assert timings[0] < 3.5 and timings[1] < 0.2 and timings[2] < 0.2
    assert backend.registry.discover_hub() == []     # the listing does not wait on a known outage either
    assert backend.stylize(str(EXAMPLE), "starry_night", 1.0, 64).after.shape == (43, 64, 3)


def toned(photo: Path, dark: str, light: str, fade: float = 0.0, stain: float = 0.0) -> np.ndarray:
    """A black-and-white print of ``photo`` as old photos are: toned from ``dark`` to ``light``,
    optionally faded towards paper white and yellowed from the edges, with grain."""
    from PIL import ImageOps

    gray = Image.open(photo).convert("L")
    out = np.asarray(ImageOps.colorize(gray, dark, light)).astype(np.float32)
    height, width = out.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width]
    edge = np.hypot(rows / height - 0.5, cols / width - 0.5)[..., None] * 1.4
    out = out * (1 - stain * edge) + stain * edge * np.array([230, 200, 120])
    out = (1 - fade) * out + fade * 215
    out += np.random.default_rng(0).normal(0, 4, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dark,light,fade,stain", [
    ("#2b1a0e", "#f5e6c8", 0.0, 0.0),      # sepia
    ("#3a2410", "#f0e0c0", 0.3, 0.25),     # faded, yellowed sepia
    ("#0a1a40", "#e0ecff", 0.0, 0.0),      # cyanotype
    ("#000000", "#ffffff", 0.4, 0.0),      # faded gray
])
def test_old_toned_photos_count_as_black_and_white(dark, light, fade, stain):
    assert is_monochrome(toned(EXAMPLE, dark, light, fade, stain))
    for colour in ("tiger.jpg", "castle.jpg", "horses.jpg"):
        assert not is_monochrome(np.asarray(Image.open(EXAMPLE.parent / colour)))


def test_colorize_takes_a_sepia_toned_photo(backend, tmp_path):
    path = tmp_path / "sepia.jpg"
    Image.fromarray(toned(EXAMPLE, "#2b1a0e", "#f5e6c8")).save(path, quality=85)
    result = backend.colorize(str(path))                  # not refused as "already has colours"
    assert result.after.shape == result.before.shape == (320, 480, 3)


# --------------------------------------------------------------------------- multi-style networks


MULTI_STYLES = ("udnie", "the_kiss", "the_scream")


@pytest.fixture(scope="module")
def multi_models(tmp_path_factory) -> Path:
    """The tiny models folder plus a multi-style network shown as its first two styles."""
    from app_helpers import tiny_style, write_style_image

    root = make_models_dir(tmp_path_factory.mktemp("multi_models"), colorizer=False)
    folder = root / "paintings"
    tiny_style(30, style_names=list(MULTI_STYLES), style_name="Three paintings").save_pretrained(folder)
    with_rows = FastStyle.from_pretrained(folder)
    torch.manual_seed(31)
    with torch.no_grad():   # distinct rows per style
        for name, tensor in with_rows.net.named_parameters():
            if tensor.dim() == 2 and name.split(".")[-2].startswith("in"):
                tensor.normal_(1.0 if name.endswith("weight") else 0.0, 0.5)
    with_rows.save_pretrained(folder)
    (folder / "styles").mkdir()
    entries = json.loads((root / "catalog.json").read_text(encoding="utf-8"))["models"]
    entries.append(dict(name="paintings", display_name="Three paintings", kind="style", folder="paintings",
                        hub_id="fast-style/paintings"))
    for name in MULTI_STYLES[:2]:
        write_style_image(f"{name}.jpg", folder / "styles" / f"{name}.jpg")
        entries.append(dict(name=f"paintings:{name}", display_name=name.replace("_", " ").title(), kind="style",
                            folder="paintings", hub_id="fast-style/paintings", style=name,
                            style_image=f"styles/{name}.jpg"))
    (root / "catalog.json").write_text(json.dumps({"models": entries}), encoding="utf-8")
    return root


@pytest.fixture()
def multi_backend(multi_models, monkeypatch) -> AppBackend:
    monkeypatch.setenv("FST_MODELS_DIR", str(multi_models))
    return AppBackend(ModelRegistry("cpu", cache_size=4, hub_timeout=5), SETTINGS)


def test_a_multistyle_network_is_offered_as_its_styles_and_loaded_once(multi_backend):
    registry = multi_backend.registry
    assert [s.key for s in registry.catalogue_styles()] == ["starry_night", "great_wave", "paintings:udnie",
                                                            "paintings:the_kiss"]
    udnie, kiss = registry.load_style("paintings:udnie"), registry.load_style("paintings:the_kiss")
    assert udnie.model is kiss.model and (udnie.style, kiss.style) == ("udnie", "the_kiss")
    assert registry.cache.loads == 1 and ("style", "paintings") in registry.cache
    photo = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((96, 64)))
    assert np.array_equal(udnie.stylize(photo), udnie.model.stylize(photo, style="udnie"))
    assert np.abs(udnie.stylize(photo).astype(int) - kiss.stylize(photo).astype(int)).mean() > 3
    info = registry.model_info("paintings:the_kiss")
    assert "**Style:** The Kiss" in info and "3 in one network" in info and "the\\_scream" in info


def test_two_styles_of_one_network_mix_in_one_pass(multi_backend):
    network = multi_backend.registry.load_style("paintings:udnie").model
    mixed = multi_backend.stylize(str(EXAMPLE), "paintings:udnie", max_side=96, blend_with="paintings:the_kiss",
                                  mix=0.25)
    expected = network.stylize(mixed.before, style={"udnie": 0.75, "the_kiss": 0.25})
    assert np.array_equal(mixed.after, expected)
    alone = multi_backend.stylize(str(EXAMPLE), "paintings:udnie", max_side=96)
    assert np.array_equal(multi_backend.stylize(str(EXAMPLE), "paintings:udnie", max_side=96,
                                                blend_with="paintings:the_kiss", mix=0).after, alone.after)
    assert np.abs(mixed.after.astype(int) - alone.after.astype(int)).mean() > 1


def test_styles_of_different_networks_mix_their_results(multi_backend):
    first = multi_backend.stylize(str(EXAMPLE), "starry_night", max_side=96).after.astype(float)
    second = multi_backend.stylize(str(EXAMPLE), "paintings:the_kiss", max_side=96).after.astype(float)
    mixed = multi_backend.stylize(str(EXAMPLE), "starry_night", max_side=96, blend_with="paintings:the_kiss",
                                  mix=0.5).after.astype(float)
    assert np.abs(mixed - (first + second) / 2).max() <= 1
    with pytest.raises(AppError, match="mix must be a number between 0 and 1"):
        multi_backend.stylize(str(EXAMPLE), "starry_night", blend_with="great_wave", mix=1.5)
    with pytest.raises(AppError, match="blend_with must be a string"):
        multi_backend.stylize(str(EXAMPLE), "starry_night", blend_with=3, mix=0.5)
    with pytest.raises(AppError, match="not a style from the list nor a Hub repo id"):
        multi_backend.stylize(str(EXAMPLE), "starry_night", blend_with="no such style", mix=0.5)


def test_the_webcam_switches_and_mixes_styles_without_loading_anything(multi_backend):
    frame = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    session = None
    outputs = []
    both = ("paintings:udnie", "paintings:the_kiss")
    for style, other, mix in (("paintings:udnie", "", 0.0), ("paintings:the_kiss", "", 0.0), (*both, 0.5),
                              (*both, 0.9)):
        styled, session = multi_backend.webcam_frame(frame, style, resolution=96, session=session,
                                                     blend_with=other, mix=mix)
        outputs.append(styled.astype(int))
    assert multi_backend.registry.cache.loads == 1 and session.frames == 4 and session.network == "paintings:udnie"
    assert all(np.abs(a - b).mean() > 1 for a, b in zip(outputs, outputs[1:]))


def test_hub_networks_offer_each_of_their_styles(multi_backend, hub, tmp_path):
    from app_helpers import tiny_style

    tiny_style(40, style_names=["dots", "waves"]).save_pretrained(tmp_path / "multi")
    hub.seed_repo("fst-tests/multi", tmp_path / "multi")
    registry = multi_backend.registry
    bound = registry.load_style("fst-tests/multi:waves")
    assert bound.style == "waves" and bound.model.style_names == ["dots", "waves"]
    keys = [o.key for o in registry.styles()]
    assert "fst-tests/multi:dots" in keys and "fst-tests/multi:waves" in keys and "fst-tests/multi" not in keys
    with pytest.raises(FstError, match="unknown style 'wave'.*did you mean 'waves'"):
        registry.load_style("fst-tests/multi:wave")
    with pytest.raises(AppError, match="use the form user/name:style"):
        registry.load_style("fst-tests/multi:bad style")


def test_the_all_styles_sheet(multi_backend):
    grid, notes = multi_backend.sheet(str(EXAMPLE), cell=64)
    # the photo and four styles (starry_night, great_wave, two of the multi-style network): 3 columns, 2 rows
    assert grid.shape == (2 * (43 + 22), 3 * 64, 3) and notes == []


# --------------------------------------------------------------------------- any painting
def test_stylize_with_an_uploaded_painting(backend, bad_inputs, data_dir):
    photo = np.asarray(Image.open(EXAMPLES / "tiger.jpg"))
    painting = str(data_dir / "styles" / "udnie.jpg")
    result = backend.stylize(photo, "starry_night", 1.0, 256, style_image=painting)
    assert result.after.shape == result.before.shape and any("your painting" in note for note in result.notes)
    assert not np.array_equal(result.after, backend.stylize(photo, "starry_night", 1.0, 256).after)
    for name, message in [("truncated.jpg", "truncated"), ("pixel_1x1.png", "too small"), ("script.svg", "SVG")]:
        with pytest.raises(FstError, match=message) as info:
            backend.stylize(photo, "starry_night", 1.0, 256, style_image=str(bad_inputs / "images" / name))
        assert "painting" in user_message(info.value).lower() or "style image" in user_message(info.value)


def test_the_webcam_takes_a_painting_decoded_once_per_session(backend, data_dir, monkeypatch):
    frame = np.asarray(Image.open(EXAMPLES / "tiger.jpg").resize((320, 214)))
    painting = str(data_dir / "styles" / "udnie.jpg")
    decoded = []
    original = app_backend.decode_upload
    monkeypatch.setattr(app_backend.handlers, "decode_upload",
                        lambda payload, **kw: decoded.append(kw.get("what", "photo")) or original(payload, **kw))
    session = None
    for _ in range(3):
        styled, session = backend.webcam_frame(frame, "starry_night", resolution=512, session=session,
                                               style_image=painting)
        assert styled is not None and max(styled.shape[:2]) <= app_backend.ARBITRARY_WEBCAM_SIDE
    assert decoded.count("painting") == 1 and session.network == "any painting"


def test_a_catalogue_without_an_any_painting_network_says_so(tmp_path, monkeypatch):
    root = make_models_dir(tmp_path / "models", colorizer=False)
    catalog_path = root / "catalog.json"
    entries = [e for e in json.loads(catalog_path.read_text())["models"] if e["kind"] != "arbitrary"]
    catalog_path.write_text(json.dumps({"models": entries}))
    monkeypatch.setenv("FST_MODELS_DIR", str(root))
    backend = AppBackend(ModelRegistry("cpu"), SETTINGS)
    photo = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(AppError, match="No any-painting network"):
        backend.stylize(photo, "starry_night", 1.0, 256, style_image=str(EXAMPLES / "tiger.jpg"))
