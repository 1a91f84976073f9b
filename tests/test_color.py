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


@pytest.mark.slow
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


# ----------------------------------------------------------------- fst.metrics (colour quality measures)
from fst import metrics  # noqa: E402


def test_psnr_and_ssim_of_identical_and_different_images():
    image = torch.rand(2, 3, 16, 16)
    assert torch.isinf(metrics.psnr(image, image)).all()
    torch.testing.assert_close(metrics.ssim(image, image), torch.ones(2, dtype=torch.float64))
    noisy = (image + 0.1).clamp(0, 1)
    expected = 10 * torch.log10(1 / (noisy - image).double().pow(2).flatten(1).mean(1))
    torch.testing.assert_close(metrics.psnr(noisy, image), expected)
    assert (metrics.ssim(noisy, image) < 1).all()
    half = torch.full((1, 3, 12, 12), 0.5)
    assert metrics.psnr(half, torch.zeros_like(half)).item() == pytest.approx(6.0206, abs=1e-4)  # 10 log10(4)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(image[..., :8, :8], image[..., :8, :8])
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(image, image[:1])


def test_colorfulness_known_values():
    gray = torch.rand(1, 1, 8, 8).expand(1, 3, 8, 8)
    assert metrics.colorfulness(gray).item() == pytest.approx(0.0, abs=1e-9)
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0
    # flat pure red: rg = 255, yb = 127.5, no spread -> 0.3 * sqrt(255^2 + 127.5^2)
    assert metrics.colorfulness(red).item() == pytest.approx(0.3 * (255**2 + 127.5**2) ** 0.5)
    saturated = torch.rand(1, 3, 8, 8)
    assert metrics.colorfulness(saturated).item() > metrics.colorfulness(metrics.gray_baseline(saturated)).item() + 10


def test_ab_mse_and_baselines():
    image = torch.rand(2, 3, 12, 12, dtype=torch.float64) * 0.8 + 0.1
    assert metrics.ab_mse(image, image).max().item() == pytest.approx(0.0, abs=1e-18)
    gray = metrics.gray_baseline(image)
    gray_lab = rgb_to_lab(gray)
    assert gray_lab[:, 1:].abs().max() < 1e-6  # neutral
    torch.testing.assert_close(gray_lab[:, :1], rgb_to_gray_l(image), atol=1e-6, rtol=0)  # same lightness
    torch.testing.assert_close(metrics.ab_mse(gray, image), rgb_to_lab(image)[:, 1:].pow(2).flatten(1).mean(1))
    mean = metrics.mean_ab([image])
    torch.testing.assert_close(mean, rgb_to_lab(image)[:, 1:].mean(dim=(0, 2, 3)))
    tinted = metrics.mean_ab_baseline(image, mean)
    tinted_lab = rgb_to_lab(tinted)
    torch.testing.assert_close(tinted_lab[:, :1], rgb_to_gray_l(image), atol=1e-3, rtol=0)
    assert metrics.ab_mse(tinted, image).mean() <= metrics.ab_mse(gray, image).mean()  # the mean is the MSE optimum
