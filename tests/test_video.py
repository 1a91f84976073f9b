"""Video files end to end (fst.video): timing, audio, rotation, formats, limits and bad input.

Every clip is generated here with PyAV: a few frames of 64x48 or so.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app_helpers import tiny_style
from fst.colorizer import Colorizer
from fst.errors import FstError, InvalidImageError, InvalidVideoError
from fst.imageio import read_image
from fst.video import VideoLimits, VideoOptions, VideoSource, process_video
from video_clips import (audio_only, many_streams, panning_frames, read_clip, textured_frame, write_clip,
                         y4m_header_only, zero_frame_video)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VFR_PTS = [0, 30, 70, 200, 210, 300, 333, 400, 401, 500, 560, 600]   # milliseconds


@pytest.fixture(scope="module")
def style():
    return tiny_style(0)


@pytest.fixture(scope="module")
def colorizer():
    torch.manual_seed(0)
    return Colorizer(width=0.05, num_classes=0, max_side=64).eval()


def run(source: Path, output: Path, **kwargs):
    kwargs.setdefault("show_progress", False)
    return process_video(source, output, **kwargs)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def mean_difference(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(first.astype(np.float32) - second.astype(np.float32)).mean())


# --------------------------------------------------------------------------- what is kept


def test_stylized_video_keeps_timing_audio_and_rotation(style, tmp_path):
    source = write_clip(tmp_path / "in.mp4", panning_frames(12), audio="aac", rotation=90, pts=VFR_PTS,
                        time_base=Fraction(1, 1000))
    report = run(source, tmp_path / "out.mp4", style=style)
    original, result = read_clip(source), read_clip(tmp_path / "out.mp4")
    assert (result["codec"], result["pix_fmt"], result["size"]) == ("h264", "yuv420p", (64, 48))
    assert result["format"].startswith("mov,mp4")
    assert result["times"] == pytest.approx(original["times"], abs=1e-3)          # variable frame rate kept
    assert result["times"][:4] == pytest.approx([0.0, 0.03, 0.07, 0.2], abs=1e-3)
    assert result["rotation"] == 90
    assert result["audio"] == "aac" and result["audio_seconds"] == pytest.approx(original["audio_seconds"], abs=0.1)
    assert (report.frames, report.width, report.height, report.audio) == (12, 64, 48, "aac (copied)")
    assert mean_difference(result["frames"][5], original["frames"][5]) > 10      # it was styled
    assert leftovers(tmp_path) == []


def test_rotated_frames_are_styled_upright(style, tmp_path):
    stored = panning_frames(4, 48, 64)
    upright = [np.ascontiguousarray(np.rot90(f)) for f in stored]           # what a player shows for rotation=90
    options = VideoOptions(stability=0)
    run(write_clip(tmp_path / "rotated.mp4", stored, rotation=90), tmp_path / "a.mp4", style=style, options=options)
    run(write_clip(tmp_path / "upright.mp4", upright), tmp_path / "b.mp4", style=style, options=options)
    run(write_clip(tmp_path / "plain.mp4", stored), tmp_path / "c.mp4", style=style, options=options)
    shown = [np.rot90(f) for f in read_clip(tmp_path / "a.mp4")["frames"]]
    expected = read_clip(tmp_path / "b.mp4")["frames"]
    sideways = [np.rot90(f) for f in read_clip(tmp_path / "c.mp4")["frames"]]
    assert mean_difference(shown[2], expected[2]) < 0.5 * mean_difference(sideways[2], expected[2])


@pytest.mark.parametrize("name, codec, pix_fmt, size, alpha", [
    ("odd.mp4", "mpeg4", "yuv420p", (65, 49), False),   # MPEG-4 Part 2 takes odd sizes; H.264 does not
    ("ten_bit.mkv", "libx265", "yuv420p10le", (64, 48), False),
    ("alpha.mov", "qtrle", "argb", (64, 48), True),
    ("alpha.mkv", "ffv1", "yuva420p", (63, 47), True),
])
def test_odd_sizes_high_bit_depth_and_alpha(style, tmp_path, name, codec, pix_fmt, size, alpha):
    width, height = size
    frames = panning_frames(6, height, width)
    visible = frames
    if alpha:   # half-transparent frames: composited onto white, as images are
        frames = [np.dstack([f, np.full((height, width), 128, np.uint8)]) for f in frames]
        visible = [np.rint(f * (128 / 255) + 255 * (127 / 255)).astype(np.uint8) for f in visible]
    options = {"libx265": {"x265-params": "log-level=error:lossless=1"}, "mpeg4": {"b": "8M"}}.get(codec)
    source = write_clip(tmp_path / name, frames, codec=codec, pix_fmt=pix_fmt, options=options)
    with VideoSource(source) as video:
        assert video.info.pixel_format == pix_fmt
        decoded = [item.image for item in video.items()]
    assert len(decoded) == 6 and decoded[3].shape == (height, width, 3)
    assert mean_difference(decoded[3], visible[3]) < 8            # 10 bits scaled to 8, alpha composited
    # (what is left is 4:2:0 chroma subsampling of sharp coloured lines)
    if alpha:
        assert mean_difference(decoded[3], frames[3][..., :3]) > 30
    report = run(source, tmp_path / "out.mp4", style=style)
    result = read_clip(tmp_path / "out.mp4")
    assert result["size"] == (width + width % 2, height + height % 2) == (report.width, report.height)
    assert result["pix_fmt"] == "yuv420p" and len(result["frames"]) == 6
    if width % 2:   # the padding column repeats the last one
        assert mean_difference(result["frames"][3][:, width], result["frames"][3][:, width - 1]) < 8


def test_start_end_and_max_side(style, tmp_path):
    source = write_clip(tmp_path / "in.mp4", panning_frames(25, 96, 128), audio="aac")
    report = run(source, tmp_path / "out.mp4", style=style, options=VideoOptions(start=0.3, end=0.7, max_side=64))
    result = read_clip(tmp_path / "out.mp4")
    assert result["size"] == (64, 48) and report.frames == 10
    assert result["times"][0] == 0.0 and result["times"][-1] == pytest.approx(0.36, abs=1e-3)
    assert result["audio_seconds"] == pytest.approx(0.4, abs=0.1)


def test_style_scale_paints_larger_strokes(style, tmp_path):
    source = write_clip(tmp_path / "in.mp4", panning_frames(3, 96, 128))
    frames = {}
    for scale in (1.0, 2.0):
        run(source, tmp_path / f"x{scale}.mp4", style=style, options=VideoOptions(style_scale=scale, stability=0))
        frames[scale] = read_clip(tmp_path / f"x{scale}.mp4")["frames"][1].astype(np.float32)
    assert frames[2.0].shape == frames[1.0].shape == (96, 128, 3)

    def fine_detail(image):   # energy of neighbouring-pixel differences
        return float(np.abs(np.diff(image, axis=1)).mean())

    assert fine_detail(frames[2.0]) < 0.8 * fine_detail(frames[1.0])
    with pytest.raises(ValueError, match="style_scale"):
        VideoOptions(style_scale=100)


def test_audio_that_mp4_cannot_carry_is_reencoded_to_aac(style, tmp_path):
    source = write_clip(tmp_path / "in.mov", panning_frames(10), audio="pcm_s16le")
    report = run(source, tmp_path / "out.mp4", style=style)
    result = read_clip(tmp_path / "out.mp4")
    assert report.audio == "pcm_s16le -> aac" and result["audio"] == "aac"
    assert result["audio_seconds"] == pytest.approx(0.4, abs=0.12)


def chroma(frame: np.ndarray) -> np.ndarray:
    """How far each pixel is from gray."""
    return frame.astype(np.float32) - frame.astype(np.float32).mean(axis=2, keepdims=True)


def test_colorize_then_stylize_a_black_and_white_film(style, colorizer, tmp_path):
    gray = [np.repeat(f.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8) for f in panning_frames(6)]
    source = write_clip(tmp_path / "old.mp4", gray)
    run(source, tmp_path / "colour.mp4", colorizer=colorizer)
    colour = read_clip(tmp_path / "colour.mp4")["frames"]
    assert np.abs(chroma(colour[3])).mean() > 3 > np.abs(chroma(gray[3])).mean()
    assert mean_difference(colour[3].mean(axis=2), gray[3][..., 0]) < 12    # the film's own lightness is kept
    run(source, tmp_path / "both.mp4", colorizer=colorizer, style=style)
    assert mean_difference(read_clip(tmp_path / "both.mp4")["frames"][3], colour[3]) > 10


class FlickeringColorizer(Colorizer):
    """The tiny colorizer with a colour cast that jumps from frame to frame: how colorized films flicker."""

    def predict_ab(self, lightness: torch.Tensor, *, max_side: int | None = None) -> torch.Tensor:
        self.calls = getattr(self, "calls", 0) + 1
        cast = torch.randn(1, 2, 1, 1, generator=torch.Generator().manual_seed(self.calls)) * 12
        return super().predict_ab(lightness, max_side=max_side) + cast


def test_colours_stay_steady_and_do_not_cross_cuts(tmp_path):
    shot = [np.repeat(f.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
            for f in panning_frames(12, step=(1, 0), seed=3)]
    film = shot[:6] + [(f * 0.3).astype(np.uint8) for f in shot[6:]]      # a darker shot after a cut
    source = write_clip(tmp_path / "film.mp4", film, options={"crf": "0"})
    results = {}
    for stability in (0.8, 0.0):
        torch.manual_seed(0)
        model = FlickeringColorizer(width=0.05, num_classes=0, max_side=64).eval()
        report = run(source, tmp_path / f"out_{stability}.mp4", colorizer=model,
                     options=VideoOptions(stability=stability, crf=0))
        results[stability] = [chroma(f).mean(axis=(0, 1)) for f in read_clip(report.output)["frames"]]
        assert report.cuts == (1 if stability else 0)
    steady, raw = np.array(results[0.8]), np.array(results[0.0])

    def colour_flicker(casts):
        return float(np.abs(np.diff(casts, axis=0)).mean())

    assert colour_flicker(steady[:6]) < 0.5 * colour_flicker(raw[:6])
    assert np.abs(steady[6] - raw[6]).max() < 0.5     # the first frame after the cut starts afresh


# --------------------------------------------------------------------------- failures leave nothing behind


def test_a_failure_midway_leaves_no_file_and_keeps_the_old_output(style, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    write_clip(truncated, [textured_frame(48, 64, seed=i) for i in range(12)])
    _faststart(truncated)
    truncated.write_bytes(truncated.read_bytes()[: int(truncated.stat().st_size * 0.8)])
    output = tmp_path / "out.mp4"
    output.write_bytes(b"previous result")
    with pytest.raises(InvalidVideoError, match=r"truncated or corrupt: decoding failed after \d+ frames"):
        run(truncated, output, style=style)
    assert output.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def test_an_interrupted_run_leaves_no_file(style, tmp_path):
    source = write_clip(tmp_path / "in.mp4", panning_frames(12))

    def interrupt(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(source, tmp_path / "out.mp4", style=style, progress=interrupt)
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


def _faststart(path: Path) -> None:
    """Rewrite an MP4 with its index first, so that a truncated copy still opens (and fails while decoding)."""
    import av

    moved = path.with_name("faststart_" + path.name)
    with av.open(str(path)) as source, av.open(str(moved), "w", format="mp4",
                                                  options={"movflags": "+faststart"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    os.replace(moved, path)


# --------------------------------------------------------------------------- bad input


def _png(path: Path) -> Path:
    Image.fromarray(textured_frame(48, 64)).save(path, format="PNG")
    return path


BAD_INPUTS = {
    "corrupt.mp4": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(3000)) and p,
                    "not a video file fst can read, or it is truncated or corrupt"),
    "empty.mp4": (lambda p: p.write_bytes(b"") or p, "is empty (0 bytes)"),
    "truncated_index.mp4": (lambda p: p.write_bytes(write_clip(p, panning_frames(10)).read_bytes()[:1500]) and p,
                            "not a video file fst can read, or it is truncated or corrupt"),
    "no_frames.mkv": (zero_frame_video, "ends before any video data"),
    "song.m4a": (audio_only, "has no video stream, only audio (aac)"),
    "huge.y4m": (lambda p: y4m_header_only(p, 15000, 15000), "frames of 15000x15000 pixels are too large"),
    "tall.y4m": (lambda p: y4m_header_only(p, 2, 20000), "16384 pixels a side"),
    "short.y4m": (lambda p: y4m_header_only(p, 64, 48), "has no video frames"),
    "streams.mkv": (lambda p: many_streams(p, 300), "has more than 64 streams"),
    "photo.mp4": (_png, "is a PNG image, not a video"),
    "notes.mp4": (lambda p: p.write_text("just some text\n" * 40) and p,
                  "not a video file fst can read"),
    "script.mp4": (lambda p: p.write_text("ffconcat version 1.0\nfile '/etc/passwd'\n") and p,
                   "not a video file fst can read"),
    "playlist.mp4": (lambda p: p.write_text("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n") and p,
                     "not a video file fst can read"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_gets_a_clear_error_and_leaves_nothing(style, tmp_path, name):
    make, expected = BAD_INPUTS[name]
    source = tmp_path / name
    make(source)
    out_folder = tmp_path / "out"
    with pytest.raises(InvalidVideoError) as info:
        run(source, out_folder / "result.mp4", style=style)
    assert expected in str(info.value)
    assert not (out_folder / "result.mp4").exists() and (not out_folder.exists() or leftovers(out_folder) == [])


def test_pipes_folders_and_missing_files_are_refused_without_waiting(style, tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)      # opening a pipe for reading would block until a writer comes
    for path, expected in [(fifo, "is not a regular file"), (tmp_path, "is not a regular file"),
                           (tmp_path / "missing.mp4", "no such file")]:
        with pytest.raises(InvalidVideoError, match=expected):
            run(path, tmp_path / "out.mp4", style=style)


def test_a_video_disguised_as_an_image(style, tmp_path):
    disguised = write_clip(tmp_path / "holiday.png", panning_frames(4), container="mp4")
    with pytest.raises(InvalidImageError, match="MP4/QuickTime video"):
        read_image(disguised)                          # the image path names what it is
    assert run(disguised, tmp_path / "out.mp4", style=style).frames == 4   # the video path reads it by content


@pytest.mark.parametrize("variable, value, expected", [
    ("FST_VIDEO_MAX_SECONDS", "0.2", "0.5 s to process; the limit is 0.2 s"),
    ("FST_VIDEO_MAX_PIXELS", "1000", "frames of 64x48 pixels are too large"),
    ("FST_VIDEO_MAX_FPS", "10", "runs at 25 frames per second; the limit is 10"),
    ("FST_VIDEO_MAX_STREAMS", "1", "has more than 1 streams"),
    ("FST_VIDEO_MAX_BYTES", "100", "the limit is 0.0001 MB (FST_VIDEO_MAX_BYTES)"),
])
def test_limits_from_the_environment_are_checked_before_decoding(tmp_path, monkeypatch, variable, value, expected):
    source = write_clip(tmp_path / "in.mp4", panning_frames(12), audio="aac")
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidVideoError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        VideoSource(source)                             # opening reads the header only


def test_a_bad_limit_setting_is_ignored_with_a_warning(tmp_path, monkeypatch, caplog):
    source = write_clip(tmp_path / "in.mp4", panning_frames(4))
    monkeypatch.setenv("FST_VIDEO_MAX_SECONDS", "forever")
    with VideoSource(source) as video:
        assert video.info.frames == 4 and video.limits.max_seconds == VideoLimits().max_seconds
    assert "ignoring FST_VIDEO_MAX_SECONDS='forever'" in caplog.text


def test_bad_options_and_ranges(style, tmp_path):
    source = write_clip(tmp_path / "in.mp4", panning_frames(6))
    with pytest.raises(InvalidVideoError, match="start=5 s is past the end"):
        run(source, tmp_path / "out.mp4", style=style, options=VideoOptions(start=5))
    with pytest.raises(ValueError, match="stability must be a number in"):
        VideoOptions(stability=1.0)
    with pytest.raises(ValueError, match="end .* must be after start"):
        VideoSource(source, start=2, end=1)
    with pytest.raises(FstError, match="must end in .mp4"):
        run(source, tmp_path / "out.avi", style=style)
    with pytest.raises(FstError, match="the output .* is the input"):
        run(source, source, style=style)
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory, style, colorizer) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    style.save_pretrained(root / "style")
    colorizer.save_pretrained(root / "colorizer")
    return root / "style", root / "colorizer"


@pytest.mark.subprocess
def test_video_command(model_folders, tmp_path):
    from test_cli import fst_cli

    style_dir, colorizer_dir = model_folders
    source = write_clip(tmp_path / "in.mp4", panning_frames(20, 96, 128), audio="aac")
    out = tmp_path / "out.mp4"
    result = fst_cli("video", str(source), "-o", str(out), "--model", str(style_dir), "--colorize", "--colorizer",
                     str(colorizer_dir), "--strength", "0.8", "--max-side", "64", "--start", "0.2", "--end", "0.6")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "10 frames of 64x48, audio aac (copied)" in result.stdout
    assert "frame/s" in result.stderr or "s/frame" in result.stderr          # the progress bar
    assert len(read_clip(out)["frames"]) == 10
    result = fst_cli("video", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "x.mp4"), "-m", str(style_dir))
    assert result.returncode == 1 and "no such file" in result.stderr and not (tmp_path / "x.mp4").exists()
    for args, expected in [((), "give a style network (--model), --colorize, or both"),
                           (("-m", str(style_dir), "--start", "2", "--end", "1"),
                            "--end must be a number of seconds after")]:
        result = fst_cli("video", str(source), "-o", str(tmp_path / "y.mp4"), *args)
        assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- threads


def test_threads_hand_errors_to_the_main_thread_and_stop():
    from fst.video.stages import ReadAhead, WriteBehind

    def items():
        yield 1
        yield 2
        raise InvalidVideoError("broken at item 3")

    seen = []
    with pytest.raises(InvalidVideoError, match="broken at item 3"):
        with ReadAhead(items) as reader:
            seen.extend(reader)
    assert seen == [1, 2]

    produced = []

    def endless():
        for number in range(10 ** 6):
            produced.append(number)
            yield number

    with ReadAhead(endless, ahead=2) as reader:
        assert next(iter(reader)) == 0
    assert len(produced) < 10                      # bounded read-ahead, stopped by close()

    handled = []

    def handle(item):
        if item == 3:
            raise OSError("disk full")
        handled.append(item)

    writer = WriteBehind(handle, behind=1)
    with pytest.raises(OSError, match="disk full"):
        for item in range(100):
            writer.put(item)
        writer.finish()
    writer.close()
    assert handled == [0, 1, 2]
