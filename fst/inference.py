"""Shared inference plumbing: any image kind in, the same kind out; device and precision.

The rule for tensors and arrays (both model classes, every call):

* float values are pixel values in [0, 1]; a float input outside
  [-FLOAT_TOLERANCE, 1 + FLOAT_TOLERANCE] is an error (a [0, 255] image is never guessed);
  uint8 is 0..255 and uint16 0..65535;
* the result has the input's dtype (uint8, uint16, or the same float dtype), its device,
  and its layout (3xHxW / 1x3xHxW tensors, HxWx3 arrays); a 1-channel (gray) input gives
  a 3-channel result;
* other numpy dtypes (bool, int32, ...) are converted like camera frames
  (``fst.imageio.to_rgb_array``) and come back as uint8.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import InvalidImageError, NonFiniteOutputError


#: How far outside [0, 1] float pixel values may stray (resampling overshoot) before it is an error.
FLOAT_TOLERANCE = 0.01
_INTEGER_RANGES = {torch.uint8: 255.0, torch.uint16: 65535.0}


@dataclasses.dataclass
class ImageInput:
    """An input image as a 1x3xHxW float32 tensor in [0, 1], and how to give results back."""

    tensor: torch.Tensor
    kind: str                      # "pil", "numpy" or "tensor"
    squeeze: bool = False          # the tensor input was 3xHxW (or 1xHxW)
    device: torch.device | None = None
    dtype: torch.dtype | None = None
    array_dtype: np.dtype | None = None   # numpy input: the dtype to give back

    def restore(self, result: torch.Tensor) -> Any:
        """``result`` (1x3xHxW in [0, 1]) as the kind, dtype and layout the caller passed in."""
        if self.kind == "tensor":
            out = _from_unit(result, self.dtype or torch.float32).to(self.device)
            return out[0] if self.squeeze else out
        if self.kind == "numpy" and self.array_dtype is not None and self.array_dtype != np.uint8:
            array = _from_unit(result, _TORCH_DTYPES.get(self.array_dtype, torch.float32))[0]
            return array.permute(1, 2, 0).contiguous().cpu().numpy().astype(self.array_dtype, copy=False)
        array = to_uint8_array(result)
        return Image.fromarray(array) if self.kind == "pil" else array


_TORCH_DTYPES = {np.dtype(np.uint16): torch.uint16, np.dtype(np.float16): torch.float16,
                 np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _from_unit(result: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[0, 1] floats as ``dtype``: floats as they are, integers scaled to their range and rounded."""
    scale = _INTEGER_RANGES.get(dtype)
    if scale is None:
        return result.to(dtype)
    return result.float().mul(scale).round_().clamp_(0, scale).to(dtype)


def _to_unit(values: torch.Tensor, what: str) -> torch.Tensor:
    """Pixel values (float in [0, 1], uint8, uint16) as float32 in [0, 1], checked."""
    scale = _INTEGER_RANGES.get(values.dtype)
    if scale is not None:
        return values.to(torch.float32).div_(scale)
    if not values.is_floating_point():
        raise InvalidImageError(f"unsupported {what} dtype {values.dtype}: use float values in [0, 1], "
                                "uint8 (0..255) or uint16 (0..65535)")
    values = values.detach().to(torch.float32)
    if not torch.isfinite(values).all():
        raise InvalidImageError(f"image {what} contains NaN/Inf values")
    low, high = float(values.min()), float(values.max())
    if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
        hint = "; divide by 255 if it holds 0..255 pixel values" if high > 1 + FLOAT_TOLERANCE else ""
        raise InvalidImageError(f"float image values must lie in [0, 1], this {what} spans "
                                f"[{low:.4g}, {high:.4g}]{hint}")
    return values.clamp_(0, 1)


def to_uint8_array(tensor: torch.Tensor) -> np.ndarray:
    """1x3xHxW float in [0, 1] -> HxWx3 uint8 (rounded, clamped)."""
    array = tensor[0].detach().float().mul(255).round_().clamp_(0, 255).to(torch.uint8)  # one new float buffer
    return array.permute(1, 2, 0).contiguous().cpu().numpy()


def from_uint8_array(array: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 1x3xHxW float32 in [0, 1]."""
    return torch.from_numpy(np.array(array, dtype=np.uint8, copy=True)).permute(2, 0, 1).unsqueeze(0).float().div_(255)


def as_input(image: Any) -> ImageInput:
    """Accept a PIL image, a numpy array (HxW, HxWx1/3/4), a torch tensor (3xHxW, 1x3xHxW, or
    gray 1xHxW, 1x1xHxW), a path or bytes; validate it (see the module docstring for the
    rule on values and dtypes); return an ImageInput."""
    if isinstance(image, torch.Tensor):
        return _tensor_input(image)
    from . import imageio  # local: keeps tensor-only callers free of the decoder stack

    if isinstance(image, np.ndarray):
        if image.dtype.kind == "f" or image.dtype == np.uint16:
            return _precise_array_input(image)
        return ImageInput(from_uint8_array(imageio.to_rgb_array(image)), "numpy", array_dtype=np.dtype(np.uint8))
    return ImageInput(from_uint8_array(np.asarray(imageio.read_image(image))), "pil")


def _tensor_input(image: torch.Tensor) -> ImageInput:
    squeeze = image.dim() == 3
    batch = image.unsqueeze(0) if squeeze else image
    if batch.dim() == 4 and batch.shape[0] > 1:
        raise InvalidImageError(f"a batch of {batch.shape[0]} images (shape {tuple(image.shape)}): pass the images "
                                "one at a time, or call model.forward(x) for the network itself")
    if batch.dim() != 4 or batch.shape[1] not in (1, 3):
        raise InvalidImageError(f"expected a 3xHxW or 1x3xHxW RGB tensor (or 1xHxW / 1x1xHxW gray), "
                                f"got shape {tuple(image.shape)}")
    if batch.shape[2] == 0 or batch.shape[3] == 0:
        raise InvalidImageError(f"empty image tensor of shape {tuple(image.shape)}")
    unit = _to_unit(batch.detach().cpu(), "tensor")
    return ImageInput(unit.expand(1, 3, -1, -1).contiguous(), "tensor", squeeze, image.device, image.dtype)


def _precise_array_input(array: np.ndarray) -> ImageInput:
    """A float or uint16 HxW / HxWxC array, kept at full precision (C = 2 or 4: alpha onto white)."""
    shape = tuple(array.shape)
    hwc = array[:, :, None] if array.ndim == 2 else array
    if hwc.ndim != 3 or hwc.shape[2] not in (1, 2, 3, 4):
        raise InvalidImageError(f"expected an HxW or HxWxC image array (C = 1, 3 or 4), got shape {shape}")
    if hwc.size == 0:
        raise InvalidImageError(f"empty image array of shape {shape}")
    values = torch.from_numpy(np.ascontiguousarray(hwc.astype(np.float32) if hwc.dtype == np.float16 else hwc))
    unit = _to_unit(values, "array")
    channels = unit.shape[2]
    if channels in (2, 4):   # composite onto white, as decoded images are
        alpha = unit[..., -1:]
        unit = unit[..., :-1] * alpha + (1 - alpha)
    tensor = unit.permute(2, 0, 1).unsqueeze(0).expand(1, 3, -1, -1).contiguous()
    return ImageInput(tensor, "numpy", array_dtype=array.dtype)


def resize_max_side(x: torch.Tensor, max_side: int | None) -> torch.Tensor:
    """Downscale (antialiased) so the longer side is at most ``max_side``; never upscale."""
    height, width = x.shape[-2:]
    if not max_side or max(height, width) <= max_side:
        return x
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)


def pad_to_min_side(x: torch.Tensor, min_side: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad tiny images up to ``min_side`` (the network's minimum) and return the
    original size for cropping; a 1x1 or 1x8000 image is processed, never rejected."""
    height, width = x.shape[-2:]
    pad_h, pad_w = max(0, min_side - height), max(0, min_side - width)
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x, (height, width)


def check_finite_output(output: torch.Tensor) -> torch.Tensor:
    """``output`` unchanged if it holds no NaN/Inf, else a NonFiniteOutputError (shown to app users).

    One float64 sum: NaN and Inf propagate into it, and it cannot overflow for float32 data.
    """
    if not torch.isfinite(output.sum(dtype=torch.float64)):
        raise NonFiniteOutputError("the model produced non-finite output (NaN/Inf): its weights are damaged or "
                                   "come from a diverged training run; re-download or retrain it")
    return output


@contextlib.contextmanager
def inference_context(device: torch.device) -> Iterator[None]:
    """inference_mode, plus fp16 autocast on CUDA."""
    with torch.inference_mode():
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                yield
        else:
            yield


def check_unit_interval(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_optional_size(name: str, value: int | None, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (or None), got {value!r}")
    return value


Finisher = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
