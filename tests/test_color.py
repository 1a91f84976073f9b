"""sRGB <-> CIE Lab: reference values, round trips, numpy/torch agreement, gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fst.color import (lab_to_rgb, lab_to_rgb_keep_lightness, lab_to_rgb_np, luminance_transfer, merge_lab,
                       rgb_to_gray_l, rgb_to_gray_l_np, rgb_to_lab, rgb_to_lab_np, split_lab)

# sRGB colour -> L*a*b* (D65, 2°), from the CIE definitions (as tabulated by Lindbloom / colormine).
REFERENCE = [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),
    ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
    ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
    ((128 / 255, 128 / 255, 128 / 255), (53.5850, 0.0, 0.0)),
    ((0.5, 0.5, 0.5), (53.3890, 0.0, 0.0)),
]


def _pixels(colours) -> torch.Tensor:
    """A list of RGB triples as a 1x3x1xN float64 image."""
    return torch.tensor(colours, dtype=torch.float64).T.reshape(1, 3, 1, -1)


def test_reference_values_torch_and_numpy():
    rgb = [c for c, _ in REFERENCE]
    expected = np.array([lab for _, lab in REFERENCE])
    lab_torch = rgb_to_lab(_pixels(rgb))[0, :, 0].T.numpy()
    lab_numpy = rgb_to_lab_np(np.array(rgb))
    np.testing.assert_allclose(lab_torch, expected, atol=1e-3)
    np.testing.assert_allclose(lab_numpy, expected, atol=1e-3)
    assert abs(lab_torch[0, 1]) < 1e-9 and abs(lab_torch[0, 2]) < 1e-9  # white is exactly neutral


def test_gray_l_matches_lab_l():
    rgb = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(rgb_to_gray_l(rgb), rgb_to_lab(rgb)[:, :1], atol=1e-10, rtol=0)
    np.testing.assert_allclose(rgb_to_gray_l_np(rgb[0].permute(1, 2, 0).numpy()), rgb_to_gray_l(rgb)[0, 0].numpy(),
                               atol=1e-10)


def test_round_trip_float64():
    generator = torch.Generator().manual_seed(0)
    rgb = torch.rand(4, 3, 16, 16, generator=generator, dtype=torch.float64)
    rgb[0, :, 0, :3] = torch.tensor([[0.0, 1.0, 0.002], [0.0, 1.0, 0.002], [0.0, 1.0, 0.002]])  # black/white/near-black
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-4
    lab = rgb_to_lab(rgb)
    assert (rgb_to_lab(lab_to_rgb(lab, clip=False)) - lab).abs().max() < 1e-4
    array = rgb[1].permute(1, 2, 0).numpy()
    assert np.abs(lab_to_rgb_np(rgb_to_lab_np(array)) - array).max() < 1e-4


def test_numpy_and_torch_agree_on_uint8():
    image = np.random.default_rng(1).integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].double() / 255
    lab = rgb_to_lab(tensor)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(rgb_to_lab_np(image), lab, atol=1e-9)
    np.testing.assert_allclose(lab_to_rgb_np(lab), lab_to_rgb(rgb_to_lab(tensor))[0].permute(1, 2, 0).numpy(),
                               atol=1e-9)


def test_kornia_agrees_to_its_rounded_constants():
    # kornia uses 0.008856 / 7.787 and a 6-digit matrix: close, but not exact.
    kornia_color = pytest.importorskip("kornia.color")
    rgb = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    assert (kornia_color.rgb_to_lab(rgb) - rgb_to_lab(rgb)).abs().max() < 0.05


def test_float32_half_and_3d_inputs():
    rgb = torch.rand(3, 4, 5)
    lab = rgb_to_lab(rgb)
    assert lab.shape == (3, 4, 5) and lab.dtype == torch.float32
    half = rgb_to_lab(rgb.half())
    assert half.dtype == torch.float16
    assert (half.float() - lab).abs().max() < 0.1
    assert (lab_to_rgb(lab) - rgb).abs().max() < 1e-4


def test_gradients_flow_and_are_finite_at_black_and_white():
    rgb = torch.tensor([0.0, 0.02, 0.5, 1.0], dtype=torch.float64).repeat(3, 1).reshape(1, 3, 1, 4)
    rgb = (rgb + torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64).reshape(1, 3, 1, 1) * rgb).clamp(0, 1)
    rgb.requires_grad_(True)
    lab_to_rgb(rgb_to_lab(rgb)).sum().backward()
    assert torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(rgb_to_lab, (torch.rand(1, 3, 2, 2, dtype=torch.float64, requires_grad=True),))


def test_split_and_merge():
    lab = rgb_to_lab(torch.rand(2, 3, 4, 4))
    lightness, ab = split_lab(lab)
    assert lightness.shape == (2, 1, 4, 4) and ab.shape == (2, 2, 4, 4)
    torch.testing.assert_close(merge_lab(lightness, ab), lab)
    with pytest.raises(ValueError, match="resize ab"):
        merge_lab(lightness, ab[..., :2, :2])


def test_keep_lightness_reduces_chroma_not_lightness():
    # L=95 with a strong blue: far out of the sRGB gamut; clipping would darken it.
    lab = torch.tensor([95.0, 10.0, -90.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    clipped = lab_to_rgb(lab)
    kept = lab_to_rgb_keep_lightness(lab)
    assert abs(rgb_to_lab(clipped)[0, 0].item() - 95.0) > 1.0
    kept_lab = rgb_to_lab(kept)[0, :, 0, 0]
    assert abs(kept_lab[0].item() - 95.0) < 1e-3
    assert kept_lab[2].item() < -1.0  # still bluish: hue kept, chroma reduced


def test_luminance_transfer_keeps_styled_l_and_content_ab():
    content = torch.rand(1, 3, 6, 6, dtype=torch.float64) * 0.6 + 0.2
    styled = torch.rand(1, 3, 6, 6, dtype=torch.float64) * 0.6 + 0.2
    result = luminance_transfer(content, styled)
    lab = rgb_to_lab(result)
    torch.testing.assert_close(lab[:, :1], rgb_to_gray_l(styled), atol=1e-3, rtol=0)
    in_gamut = (lab_to_rgb(merge_lab(rgb_to_gray_l(styled), rgb_to_lab(content)[:, 1:]), clip=False)
                .sub(0.5).abs().le(0.5).all(dim=1, keepdim=True))
    ab_error = (lab[:, 1:] - rgb_to_lab(content)[:, 1:]).abs() * in_gamut
    assert ab_error.max() < 1e-3
    with pytest.raises(ValueError, match="same shape"):
        luminance_transfer(content, styled[..., :3])


def test_luminance_transfer_is_differentiable():
    content = torch.rand(1, 3, 4, 4, requires_grad=True)
    styled = torch.rand(1, 3, 4, 4, requires_grad=True)
    luminance_transfer(content, styled).mean().backward()
    assert torch.isfinite(styled.grad).all() and styled.grad.abs().sum() > 0
    assert torch.isfinite(content.grad).all()
