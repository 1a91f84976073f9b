"""Shared inference plumbing: any image kind in, the same kind out; device and precision."""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import InvalidImageError


@dataclasses.dataclass
class ImageInput:
    """An input image as a 1x3xHxW float32 tensor in [0, 1], and how to give results back."""

    tensor: torch.Tensor
    kind: str                      # "pil", "numpy" or "tensor"
    squeeze: bool = False          # the tensor input was 3xHxW
    device: torch.device | None = None
    dtype: torch.dtype | None = None

    def restore(self, result: torch.Tensor) -> Any:
        """``result`` (1x3xHxW in [0, 1]) as the kind the caller passed in."""
        if self.kind == "tensor":
            out = result.to(self.device, self.dtype or torch.float32)
            return out[0] if self.squeeze else out
        array = to_uint8_array(result)
        return Image.fromarray(array) if self.kind == "pil" else array


def to_uint8_array(tensor: torch.Tensor) -> np.ndarray:
    """1x3xHxW float in [0, 1] -> HxWx3 uint8 (rounded, clamped)."""
    array = tensor[0].detach().float().mul(255).round_().clamp_(0, 255).to(torch.uint8)  # one new float buffer
    return array.permute(1, 2, 0).contiguous().cpu().numpy()


def from_uint8_array(array: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 1x3xHxW float32 in [0, 1]."""
    return torch.from_numpy(np.array(array, dtype=np.uint8, copy=True)).permute(2, 0, 1).unsqueeze(0).float().div_(255)


def as_input(image: Any) -> ImageInput:
    """Accept a PIL image, a numpy array (HxW, HxWx3/4, any numeric dtype), a torch tensor
    (3xHxW or 1x3xHxW, float in [0, 1]), a path or bytes; validate it; return an ImageInput."""
    if isinstance(image, torch.Tensor):
        return _tensor_input(image)
    from . import imageio  # local: keeps tensor-only callers free of the decoder stack

    if isinstance(image, np.ndarray):
        return ImageInput(from_uint8_array(imageio.to_rgb_array(image)), "numpy")
    return ImageInput(from_uint8_array(np.asarray(imageio.read_image(image))), "pil")


def _tensor_input(image: torch.Tensor) -> ImageInput:
    squeeze = image.dim() == 3
    batch = image.unsqueeze(0) if squeeze else image
    if batch.dim() != 4 or batch.shape[0] != 1 or batch.shape[1] != 3:
        raise InvalidImageError(f"expected a 3xHxW or 1x3xHxW RGB tensor, got shape {tuple(image.shape)}")
    if not batch.is_floating_point():
        raise InvalidImageError(f"expected a float tensor with values in [0, 1], got {image.dtype}")
    if batch.shape[2] == 0 or batch.shape[3] == 0:
        raise InvalidImageError(f"empty image tensor of shape {tuple(image.shape)}")
    if not torch.isfinite(batch).all():
        raise InvalidImageError("image tensor contains NaN/Inf values")
    return ImageInput(batch.detach().float().clamp(0, 1).cpu(), "tensor", squeeze, image.device, image.dtype)


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
