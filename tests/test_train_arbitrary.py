"""train/train_arbitrary.py: the reconstruction loss, a tiny real run, a continued subset, the script."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fst import ArbitraryStyle
from train.train_arbitrary import main, reconstruction_loss

REPO_ROOT = Path(__file__).resolve().parents[1]


def tiny_run(data: Path, out: Path, *extra: str) -> int:
    return main(["--data", str(data / "photos" / "imagenet_sample"), "--image_size", "32", "--batch_size", "2",
                 "--max_steps", "3", "--checkpointing_steps", "2", "--validation_steps", "100", "--log_steps", "1",
                 "--sample_styles", str(data / "styles" / "starry_night.jpg"), "--output_dir", str(out), *extra])


def test_the_loss_is_zero_for_a_perfect_reconstruction_and_grows_with_error():
    torch.manual_seed(0)
    model = ArbitraryStyle(levels=["relu2_1", "relu1_1"], decoder_width=0.125)
    photos = torch.rand(2, 3, 16, 16)
    features = model.net.encoder(photos, model.net.levels)
    perfect, logs = reconstruction_loss(features, {"relu1_1": photos}, photos, model.net.encoder, 1.0)
    assert perfect.item() == pytest.approx(0.0, abs=1e-6) and "relu1_1_pixel" in logs
    noisy, _ = reconstruction_loss(features, {"relu1_1": (photos + 0.1).clamp(0, 1)}, photos, model.net.encoder, 1.0)
    assert noisy.item() > 1e-3


@pytest.mark.slow
def test_a_tiny_run_writes_a_loadable_model_and_a_continued_subset_trains_only_its_levels(small_data, tmp_path):
    data = small_data(4, 0, 0)
    assert tiny_run(data, tmp_path / "stage1", "--arch", "wct2") == 0
    for name in ("model.safetensors", "config.json", "README.md", "samples.jpg"):
        assert (tmp_path / "stage1" / name).is_file()
    first = ArbitraryStyle.from_pretrained(tmp_path / "stage1")
    assert first.config.levels == ["relu2_1", "relu1_1"]
    assert "Any painting as the style" in (tmp_path / "stage1" / "README.md").read_text()

    assert tiny_run(data, tmp_path / "stage2", "--init_from", str(tmp_path / "stage1"), "--train_levels", "relu1_1",
                    "--lr", "1e-2") == 0
    second = ArbitraryStyle.from_pretrained(tmp_path / "stage2")
    before, after = first.state_dict(), second.state_dict()
    changed = {key.split(".")[1] for key in after if key.startswith("decoders.") and not torch.equal(before[key], after[key])}
    assert changed == {"relu1_1"}
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("encoder."))


@pytest.mark.slow
def test_max_steps_0_exports_a_subset_of_levels_unchanged(small_data, tmp_path):
    data = small_data(4, 0, 0)
    assert tiny_run(data, tmp_path / "stage1", "--arch", "wct2") == 0
    assert tiny_run(data, tmp_path / "export", "--init_from", str(tmp_path / "stage1"), "--levels", "relu1_1",
                    "--max_steps", "0") == 0
    source, exported = (ArbitraryStyle.from_pretrained(tmp_path / name) for name in ("stage1", "export"))
    assert exported.config.levels == ["relu1_1"]
    assert all(torch.equal(t, source.state_dict()[k]) for k, t in exported.state_dict().items())
    assert "exported as it is" in (tmp_path / "export" / "README.md").read_text()


@pytest.mark.slow
def test_a_level_the_start_network_lacks_is_refused(small_data, tmp_path, capsys):
    data = small_data(4, 0, 0)
    assert tiny_run(data, tmp_path / "stage1", "--arch", "wct2") == 0
    assert tiny_run(data, tmp_path / "bad", "--init_from", str(tmp_path / "stage1"), "--arch", "wct3") == 2
    assert "no decoder for relu3_1" in capsys.readouterr().err


@pytest.mark.subprocess
def test_the_reproduction_script_runs_both_stages(small_data, tmp_path):
    data = small_data(4, 2, 2)
    env = {**os.environ, "DATA": str(data), "OUT": str(tmp_path / "out"), "MODELS": str(tmp_path / "models"),
           "STEPS": "2", "STAGE2_STEPS": "2", "IMAGE_SIZE": "32"}
    result = subprocess.run(["bash", str(REPO_ROOT / "train" / "train_arbitrary_default.sh")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    shipped = ArbitraryStyle.from_pretrained(tmp_path / "models" / "arbitrary")
    assert shipped.config.arch == "wct3" and shipped.config.levels == ["relu3_1", "relu2_1", "relu1_1"]
    stored = load_file(tmp_path / "models" / "arbitrary" / "model.safetensors")
    assert all(t.dtype == torch.float16 for t in stored.values())
