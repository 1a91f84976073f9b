"""Exact sRGB <-> CIE L*a*b* conversions (D65 white, 2° observer), in torch and numpy.

Why our own and not ``kornia.color.rgb_to_lab``: kornia uses the rounded legacy
constants (``0.008856`` / ``7.787`` and a 6-digit RGB->XYZ matrix), which puts its
L*a*b* off the CIE definition by up to ~1e-2 and makes Lab->RGB->Lab round trips
inexact near black. Here the CIE constants are the exact rationals
(epsilon = 216/24389, kappa = 24389/27), the sRGB transfer function is the exact
IEC 61966-2-1 piecewise curve, the RGB->XYZ matrix is derived from the sRGB primaries
and the D65 white (0.95047, 1.0, 1.08883), and its inverse is computed, not typed, so the two
directions are inverses to float64 precision.

Conventions:

* torch: channels at dim -3 (``B x 3 x H x W`` or ``3 x H x W``), sRGB in ``[0, 1]``,
  any float dtype/device; half precision is computed in float32 and cast back.
  Every function is differentiable (no NaN gradients at black or in the
  unused branch of a piecewise curve).
* numpy: channels last (``H x W x 3``); uint8 input is scaled by 1/255, float
  input is taken as ``[0, 1]``; results are float64.
* L* is in ``[0, 100]``, a* and b* roughly in ``[-128, 127]`` for sRGB colours.
"""
from __future__ import annotations

import numpy as np
import torch

#: D65 reference white in XYZ (2° observer), Y normalised to 1.
D65_WHITE = (0.95047, 1.0, 1.08883)
#: CIE constants as exact rationals (CIE 15:2004), not the rounded 0.008856 / 903.3.
CIE_EPSILON = 216.0 / 24389.0
CIE_KAPPA = 24389.0 / 27.0

#: Chromaticities (x, y) of the sRGB red, green and blue primaries (IEC 61966-2-1).
SRGB_PRIMARIES_XY = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))


def _rgb_to_xyz_matrix() -> np.ndarray:
    """Linear sRGB -> XYZ, derived from the primaries and the D65 white.

    Deriving it (instead of typing the familiar 7-digit table, which it matches to
    1e-7) makes white map to D65_WHITE exactly, so white has a* = b* = 0 exactly.
    """
    primaries = np.array([[x / y, 1.0, (1.0 - x - y) / y] for x, y in SRGB_PRIMARIES_XY]).T
    scales = np.linalg.solve(primaries, np.asarray(D65_WHITE))
    return primaries * scales


_RGB_TO_XYZ = _rgb_to_xyz_matrix()
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)

# sRGB transfer function break points (IEC 61966-2-1).
_SRGB_ENCODED_KNEE = 0.04045
_SRGB_LINEAR_KNEE = 0.0031308


# --------------------------------------------------------------------------- torch


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half/bfloat16 (the cube roots lose too much), else the input dtype."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {x.dtype}")
    return x.dtype


def _check_channels(x: torch.Tensor, name: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (..., 3, H, W), got {tuple(x.shape)}")


def _apply_matrix(matrix: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel's 3-vector (dim -3) by a 3x3 matrix."""
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _white(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(D65_WHITE, dtype=x.dtype, device=x.device).view(3, 1, 1)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Exact sRGB decoding (gamma expansion) of values in [0, 1]."""
    # clamp inside the power branch so the unused branch never produces NaN gradients
    power = ((rgb.clamp(min=_SRGB_ENCODED_KNEE) + 0.055) / 1.055) ** 2.4
    return torch.where(rgb > _SRGB_ENCODED_KNEE, power, rgb / 12.92)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Exact sRGB encoding (gamma compression); values outside [0, 1] are not clipped."""
    power = 1.055 * linear.clamp(min=_SRGB_LINEAR_KNEE) ** (1.0 / 2.4) - 0.055
    return torch.where(linear > _SRGB_LINEAR_KNEE, power, linear * 12.92)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    cube_root = t.clamp(min=CIE_EPSILON) ** (1.0 / 3.0)
    return torch.where(t > CIE_EPSILON, cube_root, (CIE_KAPPA * t + 16.0) / 116.0)


def _lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    cube = f**3
    return torch.where(cube > CIE_EPSILON, cube, (116.0 * f - 16.0) / CIE_KAPPA)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (..., 3, H, W) -> CIE L*a*b* (L in [0, 100]), same shape."""
    _check_channels(rgb, "rgb")
    out_dtype, x = rgb.dtype, rgb.to(_compute_dtype(rgb))
    xyz = _apply_matrix(_RGB_TO_XYZ, srgb_to_linear(x)) / _white(x)
    fx, fy, fz = _lab_f(xyz).unbind(-3)
    lab = torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)
    return lab.to(out_dtype)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE L*a*b* (..., 3, H, W) -> sRGB; ``clip`` clamps out-of-gamut values to [0, 1].

    Clipping changes the lightness of out-of-gamut colours; use
    :func:`lab_to_rgb_keep_lightness` when L* must survive.
    """
    _check_channels(lab, "lab")
    out_dtype, x = lab.dtype, lab.to(_compute_dtype(lab))
    lightness, a, b = x.unbind(-3)
    fy = (lightness + 16.0) / 116.0
    fxyz = torch.stack((fy + a / 500.0, fy, fy - b / 200.0), dim=-3)
    xyz = _lab_f_inverse(fxyz) * _white(x)
    rgb = linear_to_srgb(_apply_matrix(_XYZ_TO_RGB, xyz))
    if clip:
        rgb = rgb.clamp(0.0, 1.0)
    return rgb.to(out_dtype)


def rgb_to_gray_l(rgb: torch.Tensor) -> torch.Tensor:
    """L* (lightness, [0, 100]) of sRGB images: (..., 3, H, W) -> (..., 1, H, W).

    This is the gray image a colorizer sees: L* depends on the relative
    luminance Y only, so a* and b* are never computed.
    """
    _check_channels(rgb, "rgb")
    out_dtype, x = rgb.dtype, rgb.to(_compute_dtype(rgb))
    luminance_weights = torch.as_tensor(_RGB_TO_XYZ[1], dtype=x.dtype, device=x.device).view(3, 1, 1)
    y = (srgb_to_linear(x) * luminance_weights).sum(dim=-3, keepdim=True)  # white Y is 1
    return (116.0 * _lab_f(y) - 16.0).to(out_dtype)


def split_lab(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split (..., 3, H, W) Lab into L (..., 1, H, W) and ab (..., 2, H, W)."""
    _check_channels(lab, "lab")
    return lab[..., :1, :, :], lab[..., 1:, :, :]


def merge_lab(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Concatenate L (..., 1, H, W) and ab (..., 2, H, W) into Lab (..., 3, H, W)."""
    if lightness.shape[-3] != 1 or ab.shape[-3] != 2:
        raise ValueError(f"expected L with 1 and ab with 2 channels, "
                         f"got {tuple(lightness.shape)} and {tuple(ab.shape)}")
    if lightness.shape[-2:] != ab.shape[-2:]:
        raise ValueError(f"L is {tuple(lightness.shape[-2:])} but ab is {tuple(ab.shape[-2:])}; resize ab first")
    return torch.cat((lightness, ab.to(lightness.dtype)), dim=-3)


def _in_gamut(rgb: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Per pixel: all three channels within [0, 1] (+/- tolerance)."""
    return ((rgb >= -tolerance) & (rgb <= 1.0 + tolerance)).all(dim=-3)


def lab_to_rgb_keep_lightness(lab: torch.Tensor, iterations: int = 16, tolerance: float = 1e-6) -> torch.Tensor:
    """Lab -> sRGB in [0, 1] where out-of-gamut colours lose chroma, not lightness.

    Plain clipping of an out-of-gamut colour (say L=95 with a saturated blue)
    changes its L*, so a colorized photo would no longer have the photo's
    lightness. Here each offending pixel's (a, b) is scaled towards gray by the
    largest factor in [0, 1] that lands in gamut (found by bisection; gray, at
    factor 0, is always in gamut), which keeps L* and hue. Only out-of-gamut
    pixels are searched, so in-gamut images cost one conversion. Gradients flow
    through ab (the factor is treated as a constant).
    """
    rgb = lab_to_rgb(lab, clip=False)
    with torch.no_grad():
        inside = _in_gamut(rgb, tolerance)
    if bool(inside.all()):
        return rgb.clamp(0.0, 1.0)
    # Bring the offending pixels to a (3, N, 1) "image" so the converters apply.
    lab_cl = lab.movedim(-3, -1)  # (..., H, W, 3)
    outside = ~inside
    offending = lab_cl[outside]  # (N, 3)
    with torch.no_grad():
        pixels = offending.detach().T.unsqueeze(-1)  # (3, N, 1)
        low = torch.zeros(pixels.shape[1:], dtype=pixels.dtype, device=pixels.device)  # always in gamut
        high = torch.ones_like(low)
        for _ in range(iterations):
            middle = (low + high) / 2
            trial = torch.cat((pixels[:1], pixels[1:] * middle), dim=0)
            ok = _in_gamut(lab_to_rgb(trial, clip=False), tolerance)
            low = torch.where(ok, middle, low)
            high = torch.where(ok, high, middle)
        scale = low.squeeze(-1).to(lab.dtype)  # (N,)
    fitted = torch.cat((offending[:, :1], offending[:, 1:] * scale[:, None]), dim=1)
    lab_fitted = lab_cl.clone()
    lab_fitted[outside] = fitted
    return lab_to_rgb(lab_fitted.movedim(-1, -3), clip=True)


def luminance_transfer(content_rgb: torch.Tensor, styled_rgb: torch.Tensor) -> torch.Tensor:
    """Colour-preserving style transfer: the styled image's L* with the content's a*b*.

    Both are sRGB (..., 3, H, W) in [0, 1] of the same size (Gatys et al. 2016,
    "Preserving Color in Neural Artistic Style Transfer", luminance-only
    transfer, here in CIE Lab). Out-of-gamut results lose chroma, keeping the
    styled lightness exactly. Differentiable.
    """
    if content_rgb.shape != styled_rgb.shape:
        raise ValueError(
            f"content and styled images must have the same shape, got "
            f"{tuple(content_rgb.shape)} and {tuple(styled_rgb.shape)}"
        )
    _, content_ab = split_lab(rgb_to_lab(content_rgb))
    return lab_to_rgb_keep_lightness(merge_lab(rgb_to_gray_l(styled_rgb), content_ab))


# --------------------------------------------------------------------------- numpy


def _as_unit_float(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"expected an (..., 3) array, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
    if not np.issubdtype(rgb.dtype, np.floating):
        raise TypeError(f"expected uint8 or float values in [0, 1], got {rgb.dtype}")
    return rgb.astype(np.float64)


def _srgb_to_linear_np(c: np.ndarray) -> np.ndarray:
    return np.where(c > _SRGB_ENCODED_KNEE, ((np.maximum(c, _SRGB_ENCODED_KNEE) + 0.055) / 1.055) ** 2.4, c / 12.92)


def _linear_to_srgb_np(c: np.ndarray) -> np.ndarray:
    return np.where(c > _SRGB_LINEAR_KNEE, 1.055 * np.maximum(c, _SRGB_LINEAR_KNEE) ** (1 / 2.4) - 0.055, c * 12.92)


def rgb_to_lab_np(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) uint8 or float in [0, 1] -> float64 CIE L*a*b* (..., 3)."""
    xyz = _srgb_to_linear_np(_as_unit_float(rgb)) @ _RGB_TO_XYZ.T / np.asarray(D65_WHITE)
    f = np.where(xyz > CIE_EPSILON, np.cbrt(xyz), (CIE_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), axis=-1)


def lab_to_rgb_np(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """CIE L*a*b* (..., 3) -> float64 sRGB (..., 3); ``clip`` clamps to [0, 1]."""
    lab = np.asarray(lab, dtype=np.float64)
    if lab.shape[-1:] != (3,):
        raise ValueError(f"expected an (..., 3) array, got shape {lab.shape}")
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (lightness + 16.0) / 116.0
    f = np.stack((fy + a / 500.0, fy, fy - b / 200.0), axis=-1)
    xyz = np.where(f**3 > CIE_EPSILON, f**3, (116.0 * f - 16.0) / CIE_KAPPA)
    rgb = _linear_to_srgb_np((xyz * np.asarray(D65_WHITE)) @ _XYZ_TO_RGB.T)
    return np.clip(rgb, 0.0, 1.0) if clip else rgb


def rgb_to_gray_l_np(rgb: np.ndarray) -> np.ndarray:
    """L* in [0, 100] of an sRGB (..., 3) array -> float64 (...)."""
    y = _srgb_to_linear_np(_as_unit_float(rgb)) @ _RGB_TO_XYZ[1]
    return 116.0 * np.where(y > CIE_EPSILON, np.cbrt(y), (CIE_KAPPA * y + 16.0) / 116.0) - 16.0


def chroma_spread(rgb: np.ndarray, *, bins: int = 16, dark: float = 8.0) -> float:
    """How far the colours of an RGB photo (HxWx3 uint8) stray from one tint per lightness.

    In CIE Lab units: the 90th percentile, over the pixels, of the distance of a*b* from
    the median a*b* of the pixels of similar lightness (``bins`` bands of L*; pixels darker
    than ``dark`` are skipped: their hue is noise). A gray, sepia, cyanotype or faded toned
    print has one tint per lightness (even when shadows and highlights are toned
    differently), so its spread is ~0-3; a colour photo's is ~5 and more. The photo is
    averaged down to at most 128 px first, which removes grain and JPEG colour noise.
    """
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    image.thumbnail((128, 128), Image.Resampling.BOX)
    lab = rgb_to_lab_np(np.asarray(image)).reshape(-1, 3)
    lab = lab[lab[:, 0] > dark]
    if len(lab) == 0:
        return 0.0
    band = np.minimum((lab[:, 0] / 100.0 * bins).astype(int), bins - 1)
    distance = np.empty(len(lab))
    for index in np.unique(band):
        members = band == index
        distance[members] = np.linalg.norm(lab[members, 1:] - np.median(lab[members, 1:], axis=0), axis=1)
    return float(np.percentile(distance, 90))
