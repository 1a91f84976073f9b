"""The Video tab's API (/video) in the app subprocess, called with gradio_client, and its backend."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fst.app_video import app_video_limits
from test_app import app, client  # noqa: F401 - the shared app process and its API client
from video_clips import panning_frames, read_clip, write_clip

pytestmark = pytest.mark.subprocess   # the app runs in its own process


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", panning_frames(10, 96, 128), audio="aac")


def _video(client, path: Path, *args):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), *args, api_name="/video")


def test_video_endpoint_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")
    params = [p["parameter_name"] for p in api["named_endpoints"]["/video"]["parameters"]]
    assert params == ["video", "style", "colorize", "strength", "max_side", "stability", "style_scale"]


def test_stylize_a_video_through_the_api(client, clip):
    result = _video(client, clip, "starry_night", False, 1.0, 64, 0.6)
    path = Path(result["video"] if isinstance(result, dict) else result)
    seen, original = read_clip(path), read_clip(clip)
    assert (seen["codec"], seen["pix_fmt"], seen["size"]) == ("h264", "yuv420p", (64, 48))
    assert len(seen["frames"]) == 10 and seen["audio"] == "aac"
    small = np.asarray([f[::2, ::2] for f in original["frames"]], np.float32)
    assert np.abs(np.asarray(seen["frames"], np.float32) - small).mean() > 5      # styled


def test_colorize_then_stylize_through_the_api(client, tmp_path):
    gray = [np.repeat(f.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8) for f in panning_frames(6)]
    source = write_clip(tmp_path / "film.mp4", gray)
    result = _video(client, source, "great_wave", True, 0.8, 128, 0.6, 2.0)   # brush size 2
    assert len(read_clip(Path(result["video"] if isinstance(result, dict) else result))["frames"]) == 6


@pytest.mark.parametrize("make, args, expected", [
    (lambda d: write_clip(d / "c.mp4", panning_frames(4)), ("", False, 1.0, 128, 0.6), "Choose a style"),
    (lambda d: (d / "a.mp4").write_text("not a video") and d / "a.mp4", ("starry_night", False, 1.0, 128, 0.6),
     "not a video file fst can read"),
    (lambda d: write_clip(d / "c.mp4", panning_frames(4)), ("starry_night", False, 3.0, 128, 0.6),
     "strength must be a number between 0 and 1"),
    (lambda d: write_clip(d / "c.mp4", panning_frames(4)), ("starry_night", False, 1.0, 128, 0.6, 9.0),
     "brush size must be a number between 1 and 4"),
    (lambda d: write_clip(d / "long.mp4", panning_frames(32, 32, 32), fps=1), ("starry_night", False, 1.0, 128, 0.6),
     r"32.0 s to process; the limit is 30 s \(FST_VIDEO_MAX_SECONDS\)"),
])
def test_video_errors_are_messages(client, app, tmp_path, make, args, expected):
    from gradio_client.exceptions import AppError

    logged_before = len(app.log())     # the app is shared with other test modules: read only this test's lines
    with pytest.raises(AppError, match=expected):
        _video(client, make(tmp_path), *args)
    new_lines = app.log()[logged_before:]
    assert "Traceback" not in new_lines, new_lines[-3000:]


def test_app_limits_come_from_the_environment(monkeypatch):
    assert app_video_limits("cpu").max_seconds == 30 < app_video_limits("cuda").max_seconds
    monkeypatch.setenv("FST_VIDEO_MAX_SECONDS", "5")
    monkeypatch.setenv("FST_VIDEO_MAX_FPS", "nonsense")
    limits = app_video_limits("cpu")
    assert limits.max_seconds == 5 and app_video_limits("cuda").max_seconds == 5 and limits.max_fps == 60
