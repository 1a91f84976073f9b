"""TransformerNet: the feed-forward style network of Johnson et al. (2016).

As improved by later practice (pytorch/examples, Ulyanov et al., Odena et al.):
reflection padding, affine instance norm, residual blocks and a nearest-upsample +
conv decoder (no transposed convolutions, hence no checkerboard artifacts). Tensor
names follow pytorch/examples ``fast_neural_style`` so its checkpoints convert 1:1.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Any, Iterator

import torch
from torch import nn

from .config import BaseConfig, check_choice, check_int, check_optional_str
from .errors import ConfigError

MAX_CHANNELS = 256
MAX_RES_BLOCKS = 32


@dataclasses.dataclass
class TransformerConfig(BaseConfig):
    """Hyper-parameters of a :class:`TransformerNet` (what ``config.json`` holds).

    Widths are ``channels``, ``2*channels`` and ``4*channels``; ``outer_kernel_size``
    is the kernel of the first and last convolution (9 in the paper).
    ``style_name``, ``arch``, ``loss_network`` and ``training`` are descriptive metadata.
    """

    MODEL_TYPE = "transformer_net"

    model_type: str = "transformer_net"
    in_channels: int = 3
    out_channels: int = 3
    channels: int = 32
    num_res_blocks: int = 5
    outer_kernel_size: int = 9
    upsample_mode: str = "nearest"
    arch: str | None = None
    style_name: str | None = None
    loss_network: str | None = None
    training: dict[str, Any] | None = None

    def validate(self) -> None:
        check_choice("model_type", self.model_type, (self.MODEL_TYPE,))
        check_int("in_channels", self.in_channels, 3, 3)
        check_int("out_channels", self.out_channels, 3, 3)
        check_int("channels", self.channels, 1, MAX_CHANNELS)
        check_int("num_res_blocks", self.num_res_blocks, 1, MAX_RES_BLOCKS)
        check_int("outer_kernel_size", self.outer_kernel_size, 1, 11)
        if self.outer_kernel_size % 2 == 0:
            raise ConfigError(f"outer_kernel_size must be odd, got {self.outer_kernel_size}")
        check_choice("upsample_mode", self.upsample_mode, ("nearest", "bilinear"))
        for name in ("arch", "style_name", "loss_network"):
            check_optional_str(name, getattr(self, name))
        if self.training is not None and not isinstance(self.training, dict):
            raise ConfigError("training must be a JSON object of hyper-parameters")


#: Named architecture variants: a name is enough to build one.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # The paper's network (as in pytorch/examples): 1.68 M parameters.
    "johnson": dict(channels=32, num_res_blocks=5, outer_kernel_size=9),
    # Real-time CPU variant: half the widths (1/4 of the FLOPs in the residual
    # trunk), 3 residual blocks and 5x5 outer kernels. See BENCHMARKS.md.
    "johnson-lite": dict(channels=16, num_res_blocks=3, outer_kernel_size=5),
}


def config_for_arch(arch: str, **overrides: Any) -> TransformerConfig:
    """The config of a named variant (``johnson``, ``johnson-lite``), with overrides."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return TransformerConfig(arch=arch, **{**ARCHITECTURES[arch], **overrides})


# Per-thread switch used by tiled inference: record instance-norm statistics on a
# whole (downscaled) image, then normalise every tile with those same statistics,
# so tiles agree with each other and with the untiled result.
_NORM_STATS: contextvars.ContextVar[tuple[str, dict] | None] = contextvars.ContextVar("fst_norm_stats", default=None)


class InstanceNorm2d(nn.InstanceNorm2d):
    """Affine instance norm that can record or reuse its statistics (see ``norm_stats``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = _NORM_STATS.get()
        if state is None:
            return super().forward(x)
        mode, store = state
        if mode == "record":
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, unbiased=False)
            store[id(self)] = (mean, var)
            return super().forward(x)
        mean, var = store[id(self)]
        y = (x.float() - mean) * torch.rsqrt(var + self.eps)
        return (y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)).to(x.dtype)


@contextlib.contextmanager
def norm_stats(mode: str, store: dict) -> Iterator[dict]:
    """Within this block (this thread only), instance norms ``record`` or reuse (``frozen``) stats."""
    if mode not in ("record", "frozen"):
        raise ValueError(f"mode must be 'record' or 'frozen', got {mode!r}")
    token = _NORM_STATS.set((mode, store))
    try:
        yield store
    finally:
        _NORM_STATS.reset(token)


class ConvLayer(nn.Module):
    """Reflection padding followed by a convolution (keeps borders artifact-free)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.pad(x))


class ResidualBlock(nn.Module):
    """Two 3x3 conv + instance norm layers with an identity shortcut (He et al.)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.in1 = InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.in2 = InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class TransformerNet(nn.Module):
    """Image-to-image network: RGB in [0, 1] -> stylized RGB in [0, 1], same size.

    Any input size works: the input is padded by reflection to a multiple of 4
    (the network's total stride) and the output cropped back.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        c, k = config.channels, config.outer_kernel_size
        self.conv1 = ConvLayer(config.in_channels, c, k)
        self.in1 = InstanceNorm2d(c, affine=True)
        self.conv2 = ConvLayer(c, 2 * c, 3, stride=2)
        self.in2 = InstanceNorm2d(2 * c, affine=True)
        self.conv3 = ConvLayer(2 * c, 4 * c, 3, stride=2)
        self.in3 = InstanceNorm2d(4 * c, affine=True)
        for index in range(1, config.num_res_blocks + 1):
            self.add_module(f"res{index}", ResidualBlock(4 * c))
        self.deconv1 = _Upsample(4 * c, 2 * c, 3, config.upsample_mode)
        self.in4 = InstanceNorm2d(2 * c, affine=True)
        self.deconv2 = _Upsample(2 * c, c, 3, config.upsample_mode)
        self.in5 = InstanceNorm2d(c, affine=True)
        self.deconv3 = ConvLayer(c, config.out_channels, k)
        self.relu = nn.ReLU()

    @property
    def res_blocks(self) -> list[ResidualBlock]:
        return [getattr(self, f"res{i}") for i in range(1, self.config.num_res_blocks + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % 4, (-width) % 4
        if pad_h or pad_w:
            x = _pad_reflect_or_replicate(x, pad_w, pad_h)
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        for block in self.res_blocks:
            y = block(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        y = torch.sigmoid(self.deconv3(y))
        return y[..., :height, :width]


class _Upsample(nn.Module):
    """Nearest/bilinear x2 upsampling + reflection-padded conv, named like pytorch/examples."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mode: str):
        super().__init__()
        self.mode = mode
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=2, mode=self.mode)
        return self.conv2d(self.pad(x))


def _pad_reflect_or_replicate(x: torch.Tensor, pad_w: int, pad_h: int) -> torch.Tensor:
    """Pad right/bottom; reflection needs the side to exceed the pad, else replicate."""
    mode = "reflect" if min(x.shape[-2:]) > max(pad_w, pad_h) else "replicate"
    return nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
