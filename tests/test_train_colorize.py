"""train/train_colorize.py: labels, grayscale skipping, the loss, and a tiny real `accelerate launch` run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fst.colorizer import Colorizer
from train import common
from train.train_colorize import (IGNORE_INDEX, assign_labels, colorization_loss, find_class_index,
                                  scan_colour_images)

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
PHOTOS = DATA / "photos"
COLOUR = ["n01440764_tench.jpg", "n01443537_goldfish.jpg", "n07747607_orange.jpg", "n09472597_volcano.jpg"]
GRAY = "n02096051_Airedale.jpg"  # flagged grayscale=1 in the manifest
STEPS = 10


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """4 labelled colour photos, 1 grayscale photo, 1 unlabelled BSDS photo in a subfolder."""
    if not PHOTOS.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    folder = tmp_path_factory.mktemp("colorize_data")
    for name in COLOUR + [GRAY]:
        shutil.copyfile(PHOTOS / "imagenet_sample" / name, folder / name)
    (folder / "bsds").mkdir()
    shutil.copyfile(PHOTOS / "bsds500" / "train" / "100075.jpg", folder / "bsds" / "100075.jpg")
    return folder


def test_grayscale_photos_are_skipped_and_mean_ab_is_measured(photo_folder):
    paths = common.discover_images(photo_folder, check=False)
    colour, mean_ab, num_gray = scan_colour_images(paths)
    assert num_gray == 1 and GRAY not in {p.name for p in colour} and len(colour) == 5
    assert mean_ab.shape == (2,) and mean_ab.abs().max() < 60


def test_labels_from_synsets_folders_or_none(photo_folder):
    paths = sorted(p for p in photo_folder.rglob("*.jpg") if p.name != GRAY)
    class_index = find_class_index(photo_folder, DATA / "imagenet_classes.csv")
    labels, num_classes, _ = assign_labels(paths, photo_folder, "auto", class_index)
    by_name = dict(zip((p.name for p in paths), labels))
    assert num_classes == 1000
    assert by_name["n01440764_tench.jpg"] == 0 and by_name["n01443537_goldfish.jpg"] == 1
    assert by_name["100075.jpg"] == IGNORE_INDEX  # no synset: classification loss ignores it
    labels, num_classes, _ = assign_labels(paths, photo_folder, "folder", None)
    assert num_classes == 2 and labels[0] != labels[-1]
    assert assign_labels(paths, photo_folder, "none", None)[1] == 0


@pytest.mark.slow
def test_loss_is_finite_when_no_image_in_the_batch_has_a_label():
    model = Colorizer(width=0.1, num_classes=3)
    rgb = torch.rand(2, 3, 16, 16)
    loss, terms = colorization_loss(model, rgb, torch.full((2,), IGNORE_INDEX), 1 / 300)
    assert torch.isfinite(loss) and terms["classification"].item() == 0.0
    loss.backward()
    _, terms = colorization_loss(model, rgb, torch.tensor([0, IGNORE_INDEX]), 1 / 300)
    assert terms["classification"].item() > 0


@pytest.fixture(scope="module")
def trained(photo_folder, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("colorizer_run")
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        str(REPO_ROOT / "train" / "train_colorize.py"), "--data", str(photo_folder),
        "--class_index", str(DATA / "imagenet_classes.csv"), "--output_dir", str(output),
        "--image_size", "64", "--width", "0.1", "--batch_size", "4", "--max_steps", str(STEPS),
        "--checkpointing_steps", "1", "--checkpoints_total_limit", str(STEPS), "--validation_steps", str(STEPS),
        "--log_steps", "5", "--validation_images", str(PHOTOS / "bsds500" / "val" / "3096.jpg"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return output


@pytest.mark.subprocess
def test_tiny_run_learns_and_loads_with_from_pretrained(trained, photo_folder):
    model = Colorizer.from_pretrained(trained, device="cpu")
    assert model.config.width == 0.1 and model.config.num_classes == 1000
    assert model.config.training["optimizer"] == "adadelta" and model.config.training["max_steps"] == STEPS
    card = (trained / "README.md").read_text()
    assert "library_name: fst" in card and "| gray (a*b* = 0) |" in card and "Class labels: ImageNet synsets" in card
    assert (trained / "samples.jpg").is_file()
    assert model(torch.rand(3, 20, 24)).shape == (3, 20, 24)

    # The colour loss on a fixed batch (the training photos, centre crops) goes down.
    batch = torch.cat(common.validation_images([photo_folder], None, count=10, size=64))
    no_labels = torch.full((len(batch),), IGNORE_INDEX)

    def colour_loss(candidate: Colorizer) -> float:
        candidate.train()  # batch statistics: after a few steps the running ones have not settled
        with torch.no_grad():
            return colorization_loss(candidate, batch, no_labels, 0.0)[1]["colour_mse"].item()

    after_one_step = Colorizer(model.config)
    after_one_step.load_state_dict(load_file(trained / "checkpoints" / "checkpoint-1" / "model.safetensors"))
    assert colour_loss(model) < 0.8 * colour_loss(after_one_step)
