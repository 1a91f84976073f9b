"""Numpy arrays and torch tensors of any common layout and dtype -> HxWx3 uint8 RGB."""
from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidImageError
from .identify import detail
from .sources import too_large_message

logger = logging.getLogger(__name__)

BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited onto this colour (white)."""


def flatten_alpha(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")  # no tensor can exist unless torch was imported
    return torch is not None and isinstance(value, torch.Tensor)


def is_array_or_tensor(value: Any) -> bool:
    return isinstance(value, np.ndarray) or is_tensor(value)


def tensor_to_hwc(tensor: Any) -> np.ndarray:
    """CxHxW / 1xCxHxW / HxW tensor -> HxWxC numpy array (no copy when possible)."""
    import torch

    shape = tuple(tensor.shape)
    t = tensor.detach()
    if t.ndim == 4:
        if shape[0] != 1:
            raise InvalidImageError(f"expected a single image, got a batch of {shape[0]} (shape {shape})")
        t = t[0]
    if t.ndim == 3:
        if t.shape[0] in (1, 2, 3, 4):
            t = t.permute(1, 2, 0)  # CxHxW, the torch convention
        elif t.shape[2] not in (1, 2, 3, 4):  # else it already is HxWxC
            raise InvalidImageError(f"expected a 3xHxW or 1x3xHxW image tensor, got shape {shape}")
    elif t.ndim != 2:
        raise InvalidImageError(f"expected a 3xHxW or 1x3xHxW image tensor, got shape {shape}")
    if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
        t = t.float()  # numpy has no bfloat16
    try:
        return t.cpu().numpy()
    except (TypeError, RuntimeError) as error:
        raise InvalidImageError(f"unsupported tensor dtype {tensor.dtype}: {detail(error)}") from None


def array_to_rgb(array: np.ndarray, limit: int, *, float_range: str) -> np.ndarray:
    """Validate an image array and return it as contiguous HxWx3 uint8."""
    if array.dtype.kind not in "buif":
        raise InvalidImageError(
            f"unsupported array dtype {array.dtype}; expected uint8 (or bool, uint16, int, float) pixels")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or (array.size and array.shape[2] not in (1, 2, 3, 4)):
        hint = ""
        if array.ndim == 3 and array.shape[2] > 4:
            hint = f" ({array.shape[2]} channels; 1, 2, 3 or 4 are supported)"
            if array.shape[0] in (1, 3, 4) and min(array.shape[1:]) > 16:
                hint = "; it looks channels-first (CxHxW): use array.transpose(1, 2, 0)"
        raise InvalidImageError(f"expected an HxWx3 RGB image, got shape {tuple(array.shape)}{hint}")
    height, width, channels = array.shape
    if array.size == 0:
        raise InvalidImageError(
            f"empty frame ({width}x{height}, array shape {tuple(array.shape)}): no pixel data; "
            "skip this frame (the camera may not be ready)")
    if width * height > limit:
        raise InvalidImageError(too_large_message(width, height, limit))
    pixels = array_to_uint8(array, float_range)
    if channels == 3:
        return np.ascontiguousarray(pixels)
    if channels == 1:
        return np.ascontiguousarray(np.repeat(pixels, 3, axis=2))
    mode = "LA" if channels == 2 else "RGBA"
    flat = flatten_alpha(Image.fromarray(np.ascontiguousarray(pixels), mode).convert("RGBA"))
    return np.array(flat)


def array_to_uint8(array: np.ndarray, float_range: str) -> np.ndarray:
    """Scale any numeric pixel array to uint8 (see the module docstring for the rules)."""
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return array.astype(np.uint8) * 255
    if kind == "u" and itemsize == 1:
        return array
    if kind == "u" and itemsize == 2:
        return _scale_16bit(array)
    if kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255:
            return array.astype(np.uint8)
        if low >= 0 and high <= 65535:
            return _scale_16bit(array)
        return _rescale(array, low, high)
    return _float_to_uint8(array, float_range)


def _scale_16bit(array: np.ndarray) -> np.ndarray:
    # round(v / 257) in integer arithmetic: 0 -> 0, 65535 -> 255, no clipping
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _float_to_uint8(array: np.ndarray, float_range: str) -> np.ndarray:
    values = array.astype(np.float32, copy=False) if array.dtype.itemsize < 4 else array
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(values.size - np.count_nonzero(finite))
        raise InvalidImageError(
            f"frame contains NaN/Inf values ({bad} of {values.size} values); check the camera/driver, "
            "or clean the array (e.g. np.nan_to_num) before passing it")
    low, high = float(values.min()), float(values.max())
    if float_range == "unit" or (low >= -0.5 and high <= 1.5):
        scaled = values * 255.0
    elif low >= -0.5 and high <= 255.5:
        scaled = values
    else:
        logger.warning("float pixels span [%g, %g], neither [0, 1] nor [0, 255]: rescaling min-max", low, high)
        return _rescale(values, low, high)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _rescale(array: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(array.shape, np.uint8)
    scaled = (array.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
