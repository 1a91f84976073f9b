"""Brush size (style_scale): the network runs at the image's size / scale, strokes grow with it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fst import FastStyle
from fst.brush import stylize_at_scale, working_size
from fst.color import rgb_to_lab
from fst.paths import MODELS_DIR


@pytest.fixture(scope="module")
def model() -> FastStyle:
    return FastStyle.from_pretrained(MODELS_DIR / "starry_night")


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    torch.manual_seed(0)
    base = F.interpolate(torch.rand(1, 3, 12, 16), size=(96, 128), mode="bicubic", align_corners=False)
    return base.clamp(0, 1)


@pytest.mark.slow
def test_scale_one_is_the_plain_network(model, photo):
    assert torch.equal(model.stylize(photo, style_scale=1.0), model.stylize(photo))


@pytest.mark.slow
def test_strokes_keep_their_proportions_at_twice_the_size(model, photo):
    """Styling a 2x larger copy at scale 2 looks like the 2x upsampled result at scale 1;
    at scale 1 the large copy gets strokes half as large, a clearly different picture."""
    small = model.stylize(photo)
    large = F.interpolate(photo, scale_factor=2, mode="bilinear", align_corners=False)
    expected = F.interpolate(small, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    scaled = model.stylize(large, style_scale=2.0)
    plain = model.stylize(large)
    assert scaled.shape == large.shape
    assert (scaled - expected).abs().mean() < 0.6 * (plain - expected).abs().mean()


@pytest.mark.slow
def test_detail_adds_back_the_photos_fine_luminance(model, photo):
    large = F.interpolate(photo, scale_factor=2, mode="nearest")   # sharp edges the downscale loses
    without = model.stylize(large, style_scale=2.0)
    with_detail = model.stylize(large, style_scale=2.0, detail=1.0)
    lab_without, lab_with = rgb_to_lab(without), rgb_to_lab(with_detail)
    assert (lab_with[:, 0] - lab_without[:, 0]).abs().mean() > 0.5          # L* changed
    assert (lab_with[:, 1:] - lab_without[:, 1:]).abs().mean() < (lab_with[:, 0] - lab_without[:, 0]).abs().mean()


@pytest.mark.slow
def test_works_with_tiling_strength_and_preserve_color(model, photo):
    large = F.interpolate(photo, scale_factor=4, mode="bilinear", align_corners=False)   # 384x512
    whole = model.stylize(large, style_scale=2.0)
    tiled = model.stylize(large, style_scale=2.0, tile=128)
    assert (whole - tiled).abs().mean() < 0.01
    half = model.stylize(large, style_scale=2.0, strength=0.5)
    assert torch.allclose(half, torch.lerp(large, whole, 0.5).clamp(0, 1), atol=1e-4)
    kept = model.stylize(large, style_scale=2.0, preserve_color=True)
    chroma_error = (rgb_to_lab(kept)[:, 1:] - rgb_to_lab(large)[:, 1:]).abs().mean()
    assert chroma_error < (rgb_to_lab(whole)[:, 1:] - rgb_to_lab(large)[:, 1:]).abs().mean() / 3


@pytest.mark.parametrize("bad", [0, -1, 0.1, 100, float("nan"), "2", True])
def test_bad_scales_are_refused_clearly(model, photo, bad):
    with pytest.raises(ValueError, match="style_scale must be a number in"):
        model.stylize(photo, style_scale=bad)


def test_tiny_images_and_extreme_scales():
    assert working_size(1, 1, 8.0) == (1, 1)
    assert working_size(100, 30, 4.0) == (25, 8)
    out = stylize_at_scale(lambda x: x * 0 + 0.5, torch.rand(1, 3, 5, 7), 8.0, detail=1.0)
    assert out.shape == (1, 3, 5, 7) and torch.isfinite(out).all()
