"""On a GPU: the CUDA path (channels_last, fp16 autocast) gives the CPU's pictures within fp16 rounding.

Marked ``cuda`` and skipped where PyTorch sees no CUDA device (there is nothing to install: it
needs the hardware). On a GPU machine: ``python -m pytest -m cuda``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fst import Colorizer, FastStyle, config_for_arch

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

MODELS = Path(__file__).resolve().parents[1] / "models"
#: fp16 keeps ~3 significant digits: outputs in [0, 1] agree to a few 1/255 steps at worst.
MAX_DIFF, MEAN_DIFF = 0.03, 0.003


@pytest.mark.parametrize("folder", ["starry_night", "starry_night_rt", "multistyle_rt"])
def test_style_networks_match_the_cpu(folder):
    photo = torch.rand(1, 3, 200, 304)
    cpu = FastStyle.from_pretrained(MODELS / folder, device="cpu")
    gpu = FastStyle.from_pretrained(MODELS / folder, device="cuda")
    assert gpu.device.type == "cuda"
    expected, got = cpu.stylize(photo), gpu.stylize(photo.cuda()).float().cpu()
    assert got.shape == expected.shape and torch.isfinite(got).all()
    difference = (got - expected).abs()
    assert difference.max() < MAX_DIFF and difference.mean() < MEAN_DIFF


def test_a_random_johnson_network_matches_the_cpu_at_1080p():
    torch.manual_seed(0)
    model = FastStyle(config_for_arch("johnson")).eval()
    frame = torch.rand(1, 3, 1080, 1920)
    expected = model.stylize(frame)
    got = model.to("cuda").stylize(frame.cuda()).float().cpu()
    assert (got - expected).abs().mean() < MEAN_DIFF


def test_the_colorizer_matches_the_cpu():
    gray = torch.rand(1, 1, 240, 320).expand(1, 3, 240, 320).contiguous()
    cpu = Colorizer.from_pretrained(MODELS / "colorizer", device="cpu")
    gpu = Colorizer.from_pretrained(MODELS / "colorizer", device="cuda")
    expected, got = cpu.colorize(gray), gpu.colorize(gray.cuda()).float().cpu()
    difference = (got - expected).abs()
    assert difference.max() < 2 * MAX_DIFF and difference.mean() < MEAN_DIFF
