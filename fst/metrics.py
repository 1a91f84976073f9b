"""Colorization quality metrics and the two trivial baselines every result is compared to.

All functions take sRGB batches ``B x 3 x H x W`` in [0, 1] (float tensors) and return
one value per image (a ``B`` tensor), so callers choose how to average.

* :func:`psnr`, :func:`ssim`: fidelity to the ground-truth colour photo;
* :func:`ab_mse`: error of the chrominance alone, in squared CIE a*b* units;
* :func:`colorfulness`: Hasler & Suesstrunk (2003), needs no ground truth
  (colorizers are known to under-saturate; this measures it);
* :func:`gray_baseline`, :func:`mean_ab_baseline`: "keep it gray" (a* = b* = 0) and
  "one average colour" (the training set's mean a*b* everywhere), both keeping L*.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch

from .color import lab_to_rgb_keep_lightness, merge_lab, rgb_to_gray_l, rgb_to_lab, split_lab

#: Gaussian window of SSIM (Wang et al. 2004: 11x11, sigma 1.5).
SSIM_WINDOW = 11


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    for name, x in (("prediction", prediction), ("target", target)):
        if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise ValueError(f"{name} must be a float Bx3xHxW tensor in [0, 1], got {x.dtype} {tuple(x.shape)}")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (``inf`` for identical images)."""
    _check_pair(prediction, target)
    mse = (prediction.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean structural similarity per image (RGB channels averaged; 1 for identical images).

    Gaussian 11x11 window, sigma 1.5, ``valid`` region only (as Wang et al.'s reference
    code), so both sides must be at least 11 pixels.
    """
    _check_pair(prediction, target)
    if min(prediction.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, "
                         f"got {tuple(prediction.shape[-2:])}")
    # Imported here: importing kornia creates tensors, and nothing may before an entry point opts
    # into huge pages (fst.settings.enable_huge_pages).
    from kornia.metrics import ssim as kornia_ssim

    similarity = kornia_ssim(prediction.double(), target.double(), SSIM_WINDOW, max_val=1.0, eps=0.0, padding="valid")
    return similarity.flatten(1).mean(dim=1)


def ab_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the a*b* channels per image, in (CIE Lab units)^2."""
    _check_pair(prediction, target)
    _, predicted_ab = split_lab(rgb_to_lab(prediction.double()))
    _, target_ab = split_lab(rgb_to_lab(target.double()))
    return (predicted_ab - target_ab).pow(2).flatten(1).mean(dim=1)


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness M per image, on the 0..255 scale.

    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)`` with
    ``rg = R - G`` and ``yb = (R + G) / 2 - B``. Gray images score 0; the paper's
    scale reads ~15 "slightly", ~33 "moderately", ~45 "averagely", ~59 "quite",
    ~82 "highly" and ~109 "extremely" colourful.
    """
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected a Bx3xHxW tensor, got {tuple(rgb.shape)}")
    red, green, blue = (rgb.double() * 255.0).unbind(1)
    rg = (red - green).flatten(1)
    yb = (0.5 * (red + green) - blue).flatten(1)
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    offset = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return spread + 0.3 * offset


def gray_baseline(rgb: torch.Tensor) -> torch.Tensor:
    """The "keep it gray" baseline: the photo's L* with a* = b* = 0 (Bx3xHxW sRGB)."""
    lightness = rgb_to_gray_l(rgb)
    return lab_to_rgb_keep_lightness(merge_lab(lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)))


def mean_ab_baseline(rgb: torch.Tensor, mean_ab: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """The "average colour" baseline: the photo's L* with the training set's mean (a*, b*) everywhere."""
    lightness = rgb_to_gray_l(rgb)
    ab = torch.as_tensor(mean_ab, dtype=lightness.dtype, device=lightness.device).reshape(1, 2, 1, 1)
    return lab_to_rgb_keep_lightness(merge_lab(lightness, ab.expand(lightness.shape[0], -1, *lightness.shape[-2:])))


def mean_ab(images: Iterable[torch.Tensor]) -> torch.Tensor:
    """Pixel-weighted mean (a*, b*) over sRGB images (each Bx3xHxW or 3xHxW), for :func:`mean_ab_baseline`."""
    total = torch.zeros(2, dtype=torch.float64)
    count = 0
    for image in images:
        _, ab = split_lab(rgb_to_lab(image.double()))
        total += ab.movedim(-3, 0).reshape(2, -1).sum(dim=1).cpu()
        count += ab[..., 0, :, :].numel()
    if count == 0:
        raise ValueError("mean_ab needs at least one image")
    return total / count


def periodic_peak(image: torch.Tensor, periods: Sequence[int] = (2, 4, 8)) -> torch.Tensor:
    """Strength of periodic (checkerboard / upsampling) patterns, per image (Bx3xHxW in [0, 1]).

    For each axis, the power spectrum of the luminance averaged over the other axis is
    read at the frequencies of the given periods (those of 2x and 4x upsampling); each peak
    is divided by the median power of its spectral neighbourhood. A natural photo scores
    ~1; a visible checkerboard scores tens. Returns the largest ratio over axes and periods.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected a Bx3xHxW tensor, got {tuple(image.shape)}")
    gray = image.double().mean(dim=1)
    gray = gray - gray.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(gray).abs().pow(2)
    worst = torch.ones(len(image), dtype=torch.float64)
    for spectrum in (power.mean(dim=-1), power.mean(dim=-2)):   # along rows, along columns
        size = spectrum.shape[-1]
        for period in periods:
            k = round(size / period)
            if size < 4 * period or not 4 < k < size - 4:
                continue
            neighbours = torch.cat((spectrum[:, k - 4:k - 1], spectrum[:, k + 2:k + 5]), dim=1)
            peak = spectrum[:, k - 1:k + 2].max(dim=1).values
            worst = torch.maximum(worst, peak / neighbours.median(dim=1).values.clamp_min(1e-12))
    return worst


__all__ = ["ab_mse", "colorfulness", "gray_baseline", "mean_ab", "mean_ab_baseline", "periodic_peak", "psnr", "ssim"]
