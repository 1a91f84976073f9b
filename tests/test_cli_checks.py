"""The `fst` command run in this process: every argument is checked before any work, one-line
errors and exit codes (2 bad usage, 1 runtime failure), distinct output names, quiet tools."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fst import FastStyle

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    FastStyle(channels=4, num_res_blocks=1).save_pretrained(folder)
    return folder


def run_main(capsys, *args: str) -> tuple[int, str]:
    """``fst`` in this process (fast: no interpreter start-up); returns (exit code, stderr)."""
    from fst.cli import main

    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """Two different photos with the same file name, in two folders."""
    root = tmp_path_factory.mktemp("same_names")
    paths = []
    for folder, example in (("a", "tiger.jpg"), ("b", "horses.jpg")):
        (root / folder).mkdir()
        Image.open(REPO / "docs" / "examples" / example).resize((48, 32)).save(root / folder / "photo.jpg")
        paths.append(root / folder / "photo.jpg")
    return paths


def test_same_named_inputs_get_distinct_outputs(model_dir, photos, tmp_path, capsys):
    code, err = run_main(capsys, "stylize", *map(str, photos), *map(str, photos[:1]), "-m", str(model_dir),
                         "-o", str(tmp_path / "out"))
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["photo_styled-2.jpg", "photo_styled-3.jpg", "photo_styled.jpg"]
    first, second, third = (np.asarray(Image.open(tmp_path / "out" / name))
                            for name in ("photo_styled.jpg", "photo_styled-2.jpg", "photo_styled-3.jpg"))
    assert not np.array_equal(first, second) and np.array_equal(first, third)


NOT_A_MODEL = "./no-such-model"     # a usage check that let an argument through would fail on this instead


@pytest.mark.parametrize("args,message", [
    (["-o", "{tmp}/multi.png", "{a}", "{b}"], "-o {tmp}/multi.png names a file, but 2 inputs were given"),
    (["-o", "{tmp}/x.gif", "{a}"], "unsupported output extension .gif; use one of .png, .jpg, .jpeg, .webp"),
    (["-o", "{tmp}/x.png", "{a}", "--device", "banana"], "unknown device 'banana'"),
    (["-o", "{tmp}/x.png", "{a}", "--strength", "-0.5"], "--strength must be a number in [0, 1], got -0.5"),
    (["-o", "{tmp}/x.png", "{a}", "--max-side", "0"], "--max-side must be an integer >= 16, got 0"),
    (["-o", "{tmp}/x.png", "{a}", "--tile", "8"], "--tile must be an integer >= 64, got 8"),
    (["-o", "/dev/null", "{a}"], "-o /dev/null is a character device, not a file"),
    (["-o", "/proc/x.png", "{a}"], "cannot write files into /proc"),
])
def test_bad_stylize_usage_exits_2_with_one_line_before_any_work(photos, tmp_path, capsys, args, message):
    values = {"tmp": str(tmp_path), "a": str(photos[0]), "b": str(photos[1])}
    code, err = run_main(capsys, "stylize", "-m", NOT_A_MODEL, *(a.format(**values) for a in args))
    assert code == 2 and err.startswith("fst stylize: error: ")
    assert message.format(**values) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "multi.png").exists()


def test_cuda_without_cuda_is_a_usage_error(photos, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = run_main(capsys, "stylize", str(photos[0]), "-m", NOT_A_MODEL, "-o", str(tmp_path / "x.png"),
                         "--device", "cuda")
    assert code == 2 and "CUDA is not available on this machine" in err and "use cpu" in err


@pytest.mark.parametrize("args,message", [
    (["--size", "8"], "--size must be an integer >= 16, got 8"),
    (["--size", "0"], "--size must be an integer >= 16, got 0"),
    (["--style-size", "4"], "--style-size must be an integer >= 16, got 4"),
    (["--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["--style-weight", "-3"], "--style-weight must be a number > 0, got -3"),
    (["--style-weight", "nan"], "--style-weight must be a number > 0, got nan"),
])
def test_bad_gatys_usage_exits_2_with_one_line(photos, tmp_path, capsys, args, message):
    code, err = run_main(capsys, "gatys", str(photos[0]), "--style", str(photos[1]), "-o", str(tmp_path / "g.png"),
                         *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_bad_export_usage_exits_2(tmp_path, capsys):
    code, err = run_main(capsys, "export-onnx", "-m", NOT_A_MODEL, "-o", str(tmp_path / "x.png"))
    assert code == 2 and "unsupported output extension .png; use one of .onnx" in err
    code, err = run_main(capsys, "export-onnx", "-m", NOT_A_MODEL, "-o", str(tmp_path / "x.onnx"), "--opset", "3")
    assert code == 2 and "--opset must be in 11..20, got 3" in err


def test_argparse_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as info:
        run_main(capsys, "gatys", "x.jpg", "-o", "y.png")
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "the following arguments are required: --style/-s" in err


def test_runtime_failures_exit_1_with_one_line_and_debug_shows_the_traceback(photos, tmp_path, capsys, dead_hub,
                                                                          monkeypatch):
    dead_hub("refuse")
    args = ["stylize", str(photos[0]), "-m", "user/unreachable", "-o", str(tmp_path / "x.png")]
    code, err = run_main(capsys, *args)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "cannot load 'user/unreachable': the Hub" in err and "is unreachable" in err
    code, err = run_main(capsys, "--debug", *args)
    assert code == 1 and "Traceback (most recent call last)" in err
    monkeypatch.setenv("FST_DEBUG", "1")
    assert "Traceback (most recent call last)" in run_main(capsys, *args)[1]


def test_help_shows_each_default_once(capsys):
    from fst.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "stylize" in a.choices).choices
    for name, sub in subparsers.items():
        for line in sub.format_help().splitlines():
            assert line.count("(default") <= 1, (name, line)


def test_prepare_vgg_returns_at_once_when_the_weights_are_cached(tmp_path, monkeypatch, dead_hub, capsys):
    from safetensors.torch import save_file

    from fst.cli import main
    from fst.vgg import VGG16Features, weights_path

    monkeypatch.setenv("FST_CACHE", str(tmp_path))
    save_file(VGG16Features().state_dict(), str(weights_path()), metadata={"source": "test", "normalisation": "caffe"})
    dead_hub("hang")
    start = time.perf_counter()
    code = main(["prepare-vgg"])
    assert code == 0 and time.perf_counter() - start < 1.0
    assert f"VGG16 weights ready: {weights_path()} (source: test)" in capsys.readouterr().out
