"""Stride-1 convolutions through NNPACK's Winograd/FFT kernels on CPU, with autograd.

NNPACK's inference kernels (one image at a time) do a 3x3 convolution in roughly half
the time of oneDNN's direct fp32 convolution on AVX2 CPUs. The input gradient of a
stride-1 convolution is itself a stride-1 convolution (of the output gradient with the
flipped, transposed kernel), so it runs through NNPACK too; weight and bias gradients,
when needed, come from PyTorch's own ``convolution_backward``. Results equal
``F.conv2d`` up to float rounding (tests/test_optimizations.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_AVAILABLE: bool | None = None


def available() -> bool:
    """Whether this PyTorch build has a working NNPACK (initialised on first call)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            _AVAILABLE = bool(torch._nnpack_available())
        except (AttributeError, RuntimeError):
            _AVAILABLE = False
    return _AVAILABLE


#: Below this many input pixels per channel NNPACK's 8x8 output tiles lose to oneDNN
#: (VGG16's 16x16 layers: 0.7x; 32x32: 1.0-1.7x; 64x64 and up: 1.5-2.6x; see BENCHMARKS.md).
MIN_PIXELS = 32 * 32


def applies(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, ...] = (1, 1),
            dilation: tuple[int, ...] = (1, 1), groups: int = 1) -> bool:
    """Whether :func:`conv2d` would use NNPACK for these arguments."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.dim() == 4 and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1
            and max(weight.shape[-2:]) > 1 and x.shape[-2] * x.shape[-1] >= MIN_PIXELS and available())


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int = 0) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1), through NNPACK where it applies."""
    if not applies(x, weight) or padding >= min(weight.shape[-2:]):   # NNPACK needs padding < kernel
        return F.conv2d(x, weight, bias, padding=padding)
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or bias.requires_grad):
        return _WinogradConv.apply(x, weight, bias, padding)
    return _forward(x, weight, bias, padding)


def _forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int) -> torch.Tensor:
    """NNPACK's inference algorithm, image by image (its batched one is no faster than oneDNN)."""
    x = x.contiguous()
    if x.shape[0] == 1:
        return torch._nnpack_spatial_convolution(x, weight, bias, [padding, padding])
    return torch.cat([torch._nnpack_spatial_convolution(image[None], weight, bias, [padding, padding])
                      for image in x])


class _WinogradConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return _forward(x, weight, bias, padding)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        padding = ctx.padding
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad = grad.contiguous()
        height, width = weight.shape[-2:]
        # The input gradient through NNPACK: a stride-1 convolution of the output gradient
        # with the flipped, transposed kernel, padded by kernel - 1 - padding.
        via_nnpack = need_x and height == width and padding <= height - 1
        grad_x = grad_w = grad_b = None
        if via_nnpack:
            flipped = weight.detach().flip(2, 3).transpose(0, 1).contiguous()
            grad_x = _forward(grad, flipped, weight.new_zeros(flipped.shape[0]), height - 1 - padding)
        if need_w or need_b or (need_x and not via_nnpack):
            dx, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]], [1, 1], [padding, padding], [1, 1], False, [0, 0], 1,
                [need_x and not via_nnpack, need_w, need_b])
            grad_x = dx if grad_x is None else grad_x
        return grad_x, grad_w, grad_b, None
