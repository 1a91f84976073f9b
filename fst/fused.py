"""Fused CPU forward of a TransformerNet: the memory-bound steps done in fewer passes.

The plain forward runs, per layer: convolution -> instance norm (a new tensor) ->
ReLU -> reflection pad (another new tensor). On a CPU the three memory-bound steps
cost as much as the convolutions at 640x480 (and each fresh 40 MB tensor page-faults).
Here each convolution's output is normalised in place (mean, centre, norm,
scale+shift), and the ReLU writes straight into the interior of the next layer's
padded input, whose border is then filled by mirroring a few rows and columns.
Sub-pixel upsampling (see ``UpsampleConvLayer.phase_weights``) is fused the same way: its four
phases are normalised together and the ReLU interleaves them into the padded buffer,
so the upsampled tensor is written once.

The arithmetic is the plain forward's; results differ only by float rounding
(tests/test_optimizations.py). Tiling's recorded/frozen statistics are honoured.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .fastpath import active_norm_stats, conv

if TYPE_CHECKING:  # pragma: no cover - annotations only: fst.transformer imports this module
    from .transformer import InstanceNorm2d, TransformerNet, UpsampleConvLayer


def applies(net: TransformerNet, x: torch.Tensor) -> bool:
    """Whether :func:`forward` handles this network and input (CPU fp32, nearest 3x3 upsampling)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and net.config.upsample_mode == "nearest"
            and net.deconv1.conv2d.kernel_size == (3, 3) and net.deconv2.conv2d.kernel_size == (3, 3)
            and min(x.shape[-2:]) >= 8 * net.config.space_to_depth)


def forward(net: TransformerNet, x: torch.Tensor) -> torch.Tensor:
    """The body of ``TransformerNet.forward`` after input padding (before pixel shuffle)."""
    y = conv(net.conv1.conv2d, _unshuffle_padded(x, net.config.space_to_depth, net.conv1.pad.padding[0]))
    y = conv(net.conv2.conv2d, _norm_relu_padded(net.in1, y, net.conv2.pad.padding[0]))
    y = conv(net.conv3.conv2d, _norm_relu_padded(net.in2, y, net.conv3.pad.padding[0]))
    trunk = _norm_relu_padded(net.in3, y, 1, fill=False)   # interior: the residual stream
    scratch = torch.empty_like(trunk)                      # each block's middle activation
    for block in net.res_blocks:
        _fill(trunk, 1, "reflect")
        h = _layer(block.conv1, trunk)
        h = _layer(block.conv2, _norm_relu_padded(block.in1, h, 1, out=scratch))
        _normalize_(block.in2, [h])
        _interior(trunk, 1).add_(h)
    _fill(trunk, 1, "replicate")                            # what sub-pixel upsampling reads
    y = _upsample_norm_relu_padded(net.deconv1, net.in4, trunk, 1, "replicate")
    y = _upsample_norm_relu_padded(net.deconv2, net.in5, y, net.deconv3.pad.padding[0], "reflect")
    return conv(net.deconv3.conv2d, y)


def _unshuffle_padded(x: torch.Tensor, factor: int, pad: int) -> torch.Tensor:
    """``ReflectionPad2d(pad)(pixel_unshuffle(x, factor))`` with one copy into the padded buffer."""
    if factor == 1:
        return F.pad(x, (pad,) * 4, mode="reflect") if pad else x
    batch, channels, height, width = x.shape
    height, width = height // factor, width // factor
    buffer = x.new_empty(batch, channels * factor * factor, height + 2 * pad, width + 2 * pad)
    blocks = x.view(batch, channels, height, factor, width, factor).permute(0, 1, 3, 5, 2, 4)
    _interior(buffer, pad).unflatten(1, (channels, factor, factor)).copy_(blocks)
    _fill(buffer, pad, "reflect")
    return buffer


def _layer(layer: torch.nn.Module, padded: torch.Tensor) -> torch.Tensor:
    """A ConvLayer or SeparableConvLayer applied to an already padded input."""
    if hasattr(layer, "conv2d"):
        return conv(layer.conv2d, padded)
    h = layer.depthwise(padded)
    # The pointwise 1x1 convolution as one matrix product (F.conv2d takes a slow path for 1x1).
    weight, bias = layer.pointwise.weight, layer.pointwise.bias
    batch, channels = h.shape[:2]
    if batch == 1:
        y = torch.addmm(bias.view(-1, 1), weight.view(weight.shape[0], channels), h.view(channels, -1))
    else:
        y = torch.bmm(weight.view(1, -1, channels).expand(batch, -1, -1), h.flatten(2)).add_(bias.view(-1, 1))
    return y.view(batch, -1, *h.shape[2:])


def _interior(buffer: torch.Tensor, pad: int) -> torch.Tensor:
    return buffer[:, :, pad:buffer.shape[2] - pad, pad:buffer.shape[3] - pad]


def _fill(buffer: torch.Tensor, pad: int, mode: str) -> None:
    """Fill the ``pad``-wide border of ``buffer`` from its interior (as F.pad's reflect/replicate)."""
    if pad == 0:
        return
    height, width = buffer.shape[2] - 2 * pad, buffer.shape[3] - 2 * pad
    rows = buffer[:, :, :, pad:pad + width]     # top and bottom first, then full-height columns
    if mode == "reflect":
        rows[:, :, :pad].copy_(rows[:, :, pad + 1:2 * pad + 1].flip(2))
        rows[:, :, pad + height:].copy_(rows[:, :, height - 1:pad + height - 1].flip(2))
        buffer[..., :pad].copy_(buffer[..., pad + 1:2 * pad + 1].flip(3))
        buffer[..., pad + width:].copy_(buffer[..., width - 1:pad + width - 1].flip(3))
    else:
        rows[:, :, :pad].copy_(rows[:, :, pad:pad + 1].expand(-1, -1, pad, -1))
        rows[:, :, pad + height:].copy_(rows[:, :, pad + height - 1:pad + height].expand(-1, -1, pad, -1))
        buffer[..., :pad].copy_(buffer[..., pad:pad + 1].expand(-1, -1, -1, pad))
        buffer[..., pad + width:].copy_(buffer[..., pad + width - 1:pad + width].expand(-1, -1, -1, pad))


def _normalize_(norm: InstanceNorm2d, parts: list[torch.Tensor]) -> None:
    """Instance-normalise, in place, the union of ``parts`` (views with the same batch and channels)."""
    state = active_norm_stats()
    if state is not None and state[0] == "frozen":
        mean, var = state[1][id(norm)]
        for part in parts:
            part.sub_(mean)
    else:
        count = sum(part.shape[2] * part.shape[3] for part in parts)
        mean = sum(part.sum((2, 3), keepdim=True) for part in parts) / count
        for part in parts:
            part.sub_(mean)
        var = sum(torch.linalg.vector_norm(part, dim=(2, 3), keepdim=True).square_() for part in parts) / count
        if state is not None:  # "record": the statistics of the plain forward
            state[1][id(norm)] = (mean, var)
    weight, shift = norm.gamma_beta()   # a multi-style network's rows are mixed here (fst.multistyle)
    scale = torch.rsqrt(var + norm.eps) * weight
    for part in parts:
        part.mul_(scale).add_(shift)


def _norm_relu_padded(norm: InstanceNorm2d, x: torch.Tensor, pad: int, fill: bool = True,
                      out: torch.Tensor | None = None) -> torch.Tensor:
    """relu(norm(x)) written into a buffer padded by ``pad`` (reflection): ``out`` when given,
    else a new one; ``x`` is overwritten."""
    _normalize_(norm, [x])
    batch, channels, height, width = x.shape
    buffer = x.new_empty(batch, channels, height + 2 * pad, width + 2 * pad) if out is None else out
    torch.clamp_min(x, 0, out=_interior(buffer, pad))
    if fill:
        _fill(buffer, pad, "reflect")
    return buffer


def _upsample_norm_relu_padded(upsample: UpsampleConvLayer, norm: InstanceNorm2d, source: torch.Tensor,
                               pad: int, mode: str) -> torch.Tensor:
    """relu(norm(upsample(x))) into a buffer padded by ``pad`` (``mode``).

    ``source`` is x replicate-padded by 1. The sub-pixel convolution's four 2x2 kernels
    sit in one 3x3 kernel each (at their phase's offset), so all phases share one output
    grid and the convolution gets Winograd's speed; the phases are normalised together
    and interleaved by the ReLU's write.
    """
    weight, bias = upsample.phase_weights(source.dtype, embed=True)
    y = conv(upsample.conv2d, source, weight, bias)            # (B, 4C, H, W): one phase per C channels
    channels = weight.shape[0] // 4
    batch, height, width = y.shape[0], y.shape[2], y.shape[3]
    phases = list(y.split(channels, dim=1))
    _normalize_(norm, phases)
    buffer = y.new_empty(batch, channels, 2 * height + 2 * pad, 2 * width + 2 * pad)
    grid = _interior(buffer, pad).unflatten(2, (height, 2)).unflatten(4, (width, 2))
    for index, phase in enumerate(phases):
        torch.clamp_min(phase, 0, out=grid[:, :, :, index // 2, :, index % 2])
    _fill(buffer, pad, mode)
    return buffer
