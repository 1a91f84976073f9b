"""The embedded default networks (models/): they load, they stylize, they are the style."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from fst import Colorizer, FastStyle, catalog, imageio
from fst.color import rgb_to_lab
from fst.inference import from_uint8_array, resize_max_side
from fst.losses import LossWeights, style_grams, style_loss
from fst.metrics import colorfulness, gray_baseline, psnr
from fst.paths import MODELS_DIR
from fst.vgg import load_vgg16

REPO = Path(__file__).resolve().parents[1]
ENTRIES = catalog.load_catalog(MODELS_DIR / "catalog.json")
STYLES = [e for e in ENTRIES if e.kind == "style"]
COLORIZERS = [e for e in ENTRIES if e.kind == "colorizer"]


@pytest.fixture(scope="module")
def held_out(data_dir) -> list[torch.Tensor]:
    """BSDS500 val photos: the defaults were trained without them."""
    paths = sorted((data_dir / "photos" / "bsds500" / "val").glob("*.jpg"))[:3]
    return [resize_max_side(from_uint8_array(np.asarray(imageio.read_image(p))), 192) for p in paths]


def test_catalogue_lists_at_least_five_styles_and_a_colorizer():
    assert len(STYLES) >= 5 and len(COLORIZERS) == 1
    by_name = {e.name: e for e in STYLES}
    for name in ("starry_night", "the_scream", "great_wave", "composition_vii", "the_kiss"):
        webcam = by_name[by_name[name].webcam]   # every default style has a webcam network
        assert FastStyle.from_pretrained(webcam.path).config.arch == "johnson-rt"
    for entry in ENTRIES:
        assert entry.display_name and "/" in entry.hub_id
        for name in ("config.json", "model.safetensors", "README.md"):
            assert (entry.path / name).is_file(), f"{entry.folder}/{name}"


@pytest.mark.parametrize("entry", STYLES, ids=lambda e: e.name)
@pytest.mark.slow
def test_style_network_is_its_style(entry, held_out):
    model = FastStyle.from_pretrained(entry.path)                    # strict load from its folder
    if entry.style:                                                  # a style of a multi-style network
        model = model.with_style(entry.style)
    assert entry.style_image_path is not None and (entry.path / "samples.jpg").is_file()
    vgg, weights = load_vgg16(), LossWeights()
    style = from_uint8_array(np.asarray(imageio.read_image(entry.style_image_path)))
    grams = style_grams(vgg, style, weights.style_layers)
    for photo in held_out:
        out = model.stylize(photo)
        assert out.shape == photo.shape and torch.isfinite(out).all()
        assert (out - photo).abs().mean() > 0.05, "the output barely differs from the photo"
        with torch.no_grad():
            before = float(style_loss(vgg(photo, weights.style_layers), grams, weights.style_layers))
            after = float(style_loss(vgg(out, weights.style_layers), grams, weights.style_layers))
        assert after < before / 2, f"style loss {before:.3f} -> {after:.3f}"


@pytest.fixture(scope="module")
def colorizer_held_out(data_dir) -> list[torch.Tensor]:
    """BSDS500 val photos (the colorizer never saw them), and one snow scene (nearly gray)."""
    folder = data_dir / "photos" / "bsds500" / "val"
    paths = sorted(folder.glob("*.jpg"))[:8]
    return [resize_max_side(from_uint8_array(np.asarray(imageio.read_image(p))), 256) for p in paths]


@pytest.mark.slow
@pytest.mark.parametrize("entry", COLORIZERS, ids=lambda e: e.name)
def test_colorizer_adds_colour_without_losing_fidelity_or_casting(entry, colorizer_held_out, data_dir):
    model = Colorizer.from_pretrained(entry.path)
    ours, gray, colourful = [], [], []
    for photo in colorizer_held_out:
        colour = model.colorize(photo)
        colourful.append(float(colorfulness(colour)))
        ours.append(float(psnr(colour, photo)))
        gray.append(float(psnr(gray_baseline(photo), photo)))
    assert np.mean(colourful) > 8.0                          # gray scores 0
    assert np.mean(ours) >= np.mean(gray) - 0.75, (ours, gray)
    snow = resize_max_side(from_uint8_array(np.asarray(imageio.read_image(
        data_dir / "photos" / "bsds500" / "val" / "167062.jpg"))), 256)
    a, b = rgb_to_lab(model.colorize(snow).double())[0, 1:].flatten(1).mean(dim=1).tolist()
    assert abs(a) < 4 and abs(b) < 6, f"colour cast on a snow scene: a*={a:.1f}, b*={b:.1f}"


@pytest.mark.slow
def test_hub_id_falls_back_to_the_embedded_copy(hub, caplog):
    entry = STYLES[0]
    model = FastStyle.from_pretrained(entry.hub_id)     # not on the (local) Hub: embedded copy
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(model.stylize(x), FastStyle.from_pretrained(entry.path).stylize(x))
    assert any("using the embedded copy" in r.getMessage() for r in caplog.records)


@pytest.mark.subprocess
def test_reproduction_scripts_run_with_a_tiny_step_count(data_dir, small_data, tmp_path):
    data = small_data(6, 3, 2)
    shutil.copy(data_dir / "imagenet_classes.csv", data / "imagenet_classes.csv")
    env = {**os.environ, "DATA": str(data), "OUT": str(tmp_path / "out"), "MODELS": str(tmp_path / "models"),
           "STEPS": "2", "IMAGE_SIZE": "32", "STAGE2_STEPS": "3", "STAGE2_SIZE": "32"}
    result = subprocess.run(["bash", "train/train_defaults.sh", "starry_night", "the_kiss"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    shipped = FastStyle.from_pretrained(tmp_path / "models" / "starry_night").config.training
    assert shipped["max_steps"] == 3 and shipped["init_from"] and shipped["style_layer_weights"] == [1, 1, 2, 4]
    assert FastStyle.from_pretrained(tmp_path / "models" / "the_kiss").config.training["style_layer_weights"] == [1] * 4
    webcam = FastStyle.from_pretrained(tmp_path / "models" / "starry_night_rt").config   # its webcam network
    assert webcam.arch == "johnson-rt" and webcam.training["max_steps"] == 3 and webcam.training["init_from"]
    stage1 = FastStyle.from_pretrained(tmp_path / "out" / "starry_night_rt").config.training
    assert stage1["max_steps"] == 6 and not stage1["init_from"]     # from scratch, 3x the steps
    warm = FastStyle.from_pretrained(tmp_path / "out" / "the_kiss_rt").config.training
    assert warm["max_steps"] == 3 and warm["init_from"] == "starry_night_rt"   # warm-started, 1.5x the steps
    env.update(OUT=str(tmp_path / "out" / "colorizer"), IMAGE_SIZE="64")
    result = subprocess.run(["bash", "train/train_colorizer_default.sh"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert Colorizer.from_pretrained(tmp_path / "models" / "colorizer").config.training["max_steps"] == 2
