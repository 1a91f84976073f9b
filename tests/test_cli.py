"""The `fst` command: real files in, real files out, exit codes and messages."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fst import FastStyle

pytestmark = pytest.mark.subprocess   # every test runs `python -m fst`

REPO = Path(__file__).resolve().parents[1]


def fst_cli(*args: str, timeout: float = 300, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fst", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    FastStyle(channels=4, num_res_blocks=1).save_pretrained(folder)
    return folder


def test_stylize_one_file(model_dir, data_dir, tmp_path):
    source = data_dir / "photos" / "bsds500" / "val" / sorted(p.name for p in (data_dir / "photos/bsds500/val").iterdir())[0]
    out = tmp_path / "styled.png"
    result = fst_cli("stylize", str(source), "--model", str(model_dir), "-o", str(out), "--max-side", "64")
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert max(image.size) == 64 and image.mode == "RGB"


def test_batch_with_bad_inputs_writes_the_good_ones_and_exits_1(model_dir, bad_inputs, tmp_path):
    images = bad_inputs / "images"
    inputs = [images / "reference_upright_quadrants.png", images / "zero_byte.jpg", images / "script.svg",
              images / "truncated.jpg", images / "exif_orientation_6.jpg"]
    result = fst_cli("stylize", *map(str, inputs), "--model", str(model_dir), "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "the uploaded file is empty" in result.stderr
    assert "unsupported format: SVG" in result.stderr
    assert "truncated or corrupt" in result.stderr
    assert "Traceback" not in result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["exif_orientation_6_styled.jpg", "reference_upright_quadrants_styled.png"]
    with Image.open(tmp_path / "out" / "exif_orientation_6_styled.jpg") as rotated:
        assert rotated.size == (96, 64)          # EXIF orientation applied
        assert not rotated.getexif()             # and not kept


def test_unloadable_model_and_bad_option_exit_2(bad_inputs, model_dir, tmp_path):
    image = str(bad_inputs / "images" / "plain.bmp")
    result = fst_cli("stylize", image, "--model", str(bad_inputs / "models" / "pickle_only_pytorch_model_bin"),
                     "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "not loaded for security reasons" in result.stderr
    result = fst_cli("stylize", image, "--model", str(model_dir), "-o", str(tmp_path / "x.png"), "--strength", "3")
    assert result.returncode == 2 and "strength must be a number in [0, 1]" in result.stderr
    assert "Traceback" not in result.stderr


def test_gatys_command(data_dir, tmp_path):
    out = tmp_path / "gatys.png"
    result = fst_cli("gatys", str(data_dir / "photos" / "bsds500" / "val" / "101085.jpg"), "--style",
                     str(data_dir / "styles" / "udnie.jpg"), "-o", str(out), "--steps", "3", "--size", "48",
                     "--style-size", "64")
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(out)).shape[:2] in [(32, 48), (48, 32)]
    assert re.search(r"gatys: .* [123]/3 \[", result.stderr) and "step/s" in result.stderr   # steps, as asked
    assert "eval" not in result.stderr and "Warning" not in result.stderr
    assert re.match(r"wrote .*gatys.png after [123] lbfgs steps \(\d+ loss evaluations", result.stdout)


def test_export_onnx_command(model_dir, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = fst_cli("export-onnx", "--model", str(model_dir), "-o", "m.onnx", "--check", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "max |ONNX Runtime - PyTorch|" in result.stdout and (work / "m.onnx").stat().st_size > 1000
    assert result.stderr == ""                                   # no exporter warnings by default
    assert sorted(p.name for p in work.iterdir()) == ["m.onnx"]  # and no stray file

