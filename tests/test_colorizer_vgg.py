"""The VGG16 colorizer (vgg16-color): colour classes, annealed mean, training parts, a tiny real run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fst.colorizer import Colorizer, ColorizerConfig
from fst.colorizer_vgg import VGGColorizerNet, ab_bin_centres, annealed_mean, gray_rgb
from fst.errors import ConfigError
from train.colour_classes import choose_temperature, class_weights, pick_temperature, soft_targets

REPO_ROOT = Path(__file__).resolve().parents[1]
PHOTOS = REPO_ROOT.parent / "shared" / "data" / "photos"


def small_model(**fields) -> Colorizer:
    """A narrow VGG16 colorizer (random branches; the encoder's weights do not matter here)."""
    return Colorizer(ColorizerConfig(backbone="vgg16", width=0.1, num_classes=5, **fields))


def test_colour_classes_cover_the_srgb_gamut_on_a_grid_of_ten():
    centres = ab_bin_centres(10)
    assert 240 <= len(centres) <= 330 and torch.all(centres % 10 == 0)
    assert centres[:, 0].min() <= -80 and centres[:, 0].max() >= 90      # green .. magenta
    assert centres[:, 1].min() <= -100 and centres[:, 1].max() >= 90     # blue .. yellow
    assert (centres == 0).all(dim=1).any()                                # gray is a class


def test_annealed_mean_goes_from_the_mean_to_the_mode():
    centres = torch.tensor([[0.0, 0.0], [60.0, 0.0]])
    logits = torch.log(torch.tensor([0.4, 0.6])).view(1, 2, 1, 1)
    mean = annealed_mean(logits, centres, 1.0)[0, :, 0, 0]
    sharp = annealed_mean(logits, centres, 0.05)[0, :, 0, 0]
    assert torch.allclose(mean, torch.tensor([36.0, 0.0]), atol=1e-4)
    assert sharp[0] > 59.0


def test_gray_rgb_is_neutral_and_keeps_the_lightness():
    lightness = torch.linspace(0, 1, 11).view(1, 1, 1, 11)
    rgb = gray_rgb(lightness)
    assert torch.allclose(rgb[:, 0], rgb[:, 1], atol=1e-5) and torch.allclose(rgb[:, 1], rgb[:, 2], atol=1e-5)
    assert torch.all(rgb[0, 0, 0, 1:] > rgb[0, 0, 0, :-1])


@pytest.mark.slow
def test_any_input_size_and_the_same_contract_as_the_iizuka_net():
    model = small_model().eval()
    assert isinstance(model.net, VGGColorizerNet)
    for height, width in ((1, 1), (7, 13), (64, 48)):
        ab, logits = model.forward(torch.rand(1, 1, height, width))
        assert ab.shape == (1, 2, height, width) and logits.shape == (1, 5)
        assert 0 <= ab.min() and ab.max() <= 1
    colour = model.colorize(torch.rand(3, 40, 30))
    assert colour.shape == (3, 40, 30)


@pytest.mark.slow
def test_round_trip_is_strict_and_keeps_the_temperature(tmp_path):
    model = small_model(temperature=0.5)
    model.save_pretrained(tmp_path)
    loaded = Colorizer.from_pretrained(tmp_path)
    assert loaded.config.backbone == "vgg16" and loaded.config.temperature == 0.5
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(loaded.eval().colorize(x), model.eval().colorize(x), atol=1e-5)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="backbone"):
        ColorizerConfig(backbone="resnet")
    with pytest.raises(ConfigError, match="temperature"):
        ColorizerConfig(backbone="vgg16", temperature=0.0)
    with pytest.raises(ConfigError, match="contradict"):
        ColorizerConfig(arch="vgg16-color", backbone="iizuka")


def test_rebalancing_favours_rare_colours_and_soft_targets_sum_to_one():
    centres = ab_bin_centres(10)
    common = torch.zeros(1000, 2)
    rare = torch.tensor([[60.0, 60.0]]).expand(10, 2)
    weights = class_weights(torch.cat((common, rare)), centres)
    gray_index = int(torch.cdist(torch.zeros(1, 2), centres).argmin())
    red_index = int(torch.cdist(torch.tensor([[60.0, 60.0]]), centres).argmin())
    assert weights[red_index] > 3 * weights[gray_index]
    targets, nearest = soft_targets(torch.tensor([[[[3.0]], [[-2.0]]]]), centres)
    assert torch.allclose(targets.sum(dim=1), torch.ones(1, 1, 1)) and int(nearest) == gray_index


@pytest.mark.slow
def test_temperature_is_chosen_for_fidelity_among_the_colourful_ones():
    model = small_model().eval()
    photos = [torch.rand(1, 3, 32, 32) for _ in range(2)]
    chosen, rows = choose_temperature(model, photos)
    assert model.config.temperature == chosen and len(rows) >= 5
    assert chosen in [row["temperature"] for row in rows]


def test_temperature_rule_prefers_fidelity_then_colour_among_ties():
    rows = [{"temperature": t, "psnr": p, "colourfulness": c}
            for t, p, c in [(0.38, 22.9, 19.0), (0.5, 23.50, 13.6), (0.8, 23.48, 15.8), (1.0, 23.40, 16.8)]]
    assert pick_temperature(rows, truth_colourfulness=36.0) == 0.38   # the only one at >= 50% colour
    assert pick_temperature(rows, truth_colourfulness=40.0) == 0.8    # none: most colourful within 0.05 dB
    assert pick_temperature(rows[1:2], truth_colourfulness=40.0) == 0.5


@pytest.mark.subprocess
def test_tiny_real_training_run_publishes_a_loadable_colorizer(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in sorted((PHOTOS / "imagenet_sample").glob("n0*.jpg"))[:6]:
        shutil.copyfile(path, data / path.name)
    output = tmp_path / "out"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        str(REPO_ROOT / "train" / "train_colorize.py"), "--data", str(data), "--arch", "vgg16-color",
        "--labels", "none", "--output_dir", str(output), "--image_size", "32", "--batch_size", "2",
        "--optimizer", "adam", "--max_steps", "4", "--checkpointing_steps", "2", "--num_validation", "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "temperature" in result.stderr and "chosen" in result.stderr
    model = Colorizer.from_pretrained(output)
    assert model.config.backbone == "vgg16" and model.config.training["arch"] == "vgg16-color"
    assert model.colorize(torch.rand(3, 24, 20)).shape == (3, 24, 20)


def test_encoded_photos_are_cached_on_disk_and_reused_only_for_the_same_photos(tmp_path):
    from train.colour_classes import EncodedCrops

    paths = sorted((PHOTOS / "imagenet_sample").glob("n0*.jpg"))[:3]
    calls = []

    def encode(lightness):
        calls.append(1)
        b, _, h, w = lightness.shape
        return torch.full((b, 256, h // 4, w // 4), float(len(calls))), torch.zeros(b, 512, h // 8, w // 8)

    cache = tmp_path / "features.safetensors"
    first = EncodedCrops(encode, paths, [0, 1, 2], 32, cache_file=cache)
    before = [first.encoded(i) for i in range(3)]
    first.save_cache()
    assert len(calls) == 3 and cache.is_file()
    again = EncodedCrops(encode, paths, [0, 1, 2], 32, cache_file=cache)
    assert all(torch.equal(a, b) for i in range(3) for a, b in zip(before[i], again.encoded(i)))
    assert len(calls) == 3                                                  # nothing encoded again
    other = EncodedCrops(encode, paths[:2], [0, 1], 32, cache_file=cache)   # other photos: cache ignored
    other.encoded(0)
    assert len(calls) == 4
    flipped = again[0]
    assert set(flipped) >= {"relu3_3", "relu4_3", "ab", "label"} and flipped["ab"].shape == (2, 8, 8)
