"""TransformerNet: the feed-forward style network of Johnson et al. (2016).

As improved by later practice (pytorch/examples, Ulyanov et al., Odena et al.):
reflection padding, affine instance norm, residual blocks and a nearest-upsample +
conv decoder (no transposed convolutions, hence no checkerboard artifacts). Tensor
names follow pytorch/examples ``fast_neural_style`` so its checkpoints convert 1:1.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import fused, multistyle
from .config import BaseConfig, check_choice, check_int, check_optional_str
from .errors import ConfigError
# The fast path's switches live in fst.fastpath; FastPath, TRAINING_PATH, fast_inference and
# norm_stats are importable from here too, next to the network they switch.
from .fastpath import (TRAINING_PATH, FastPath, active_norm_stats, active_path, conv, fast_inference,  # noqa: F401
                       norm_stats, relu)

MAX_CHANNELS = 256
MAX_RES_BLOCKS = 32


#: Named architecture variants: a name is enough to build one. Each sets every structural
#: field of :class:`TransformerConfig`.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # The paper's network (as in pytorch/examples): 1.68 M parameters.
    "johnson": dict(channels=32, num_res_blocks=5, outer_kernel_size=9, upsample_mode="nearest",
                    residual_block="standard", space_to_depth=1),
    # Real-time CPU variant: half the widths (1/4 of the FLOPs in the residual
    # trunk), 3 residual blocks and 5x5 outer kernels. See BENCHMARKS.md.
    "johnson-lite": dict(channels=16, num_res_blocks=3, outer_kernel_size=5, upsample_mode="nearest",
                         residual_block="standard", space_to_depth=1),
    # Webcam variant: johnson-lite's widths run at half resolution (space-to-depth 2),
    # depthwise-separable residual blocks and 3x3 outer kernels: ~1/9 of johnson-lite's
    # FLOPs. See BENCHMARKS.md for its speed and the quality measurements.
    "johnson-rt": dict(channels=16, num_res_blocks=3, outer_kernel_size=3, upsample_mode="nearest",
                       residual_block="depthwise", space_to_depth=2),
}


@dataclasses.dataclass
class TransformerConfig(BaseConfig):
    """Hyper-parameters of a :class:`TransformerNet` (what ``config.json`` holds).

    Widths are ``channels``, ``2*channels`` and ``4*channels``; ``outer_kernel_size``
    is the kernel of the first and last convolution (9 in the paper).
    ``residual_block`` is ``standard`` (two 3x3 convolutions, the paper) or
    ``depthwise`` (each 3x3 convolution depthwise-separable: ~8x fewer FLOPs).
    ``space_to_depth`` 2 runs the whole network at half resolution: the input is
    rearranged into 4x the channels (pixel unshuffle) and the output back (pixel
    shuffle).

    ``arch`` names a variant of :data:`ARCHITECTURES`; it fixes the structural fields
    (channels, num_res_blocks, outer_kernel_size, upsample_mode, residual_block,
    space_to_depth): left unset (None) they take the variant's values, and a value that
    contradicts it is a ConfigError. Without ``arch`` the unset ones take ``johnson``'s
    (the paper's structure and tensor names) and the network is custom.
    ``style_name``, ``loss_network`` and ``training`` are descriptive metadata.

    ``style_names`` makes a multi-style network (conditional instance norm, see
    :mod:`fst.multistyle`): every instance norm holds one (gamma, beta) row per style.
    ``base`` makes an *add-on* that holds only those norm rows: the rest of the network
    comes from the ``base`` network (a Hub repo id, pinned at ``base_revision``, or a
    folder for local use) of the same structure. Left unset (None), the three fields are
    not written to config.json, so single-style configs keep their exact form.
    """

    MODEL_TYPE = "transformer_net"
    #: Fields written to config.json only when set.
    OPTIONAL_FIELDS = ("style_names", "base", "base_revision")
    ARCHITECTURES = ARCHITECTURES
    DEFAULT_ARCH = "johnson"

    model_type: str = "transformer_net"
    in_channels: int = 3
    out_channels: int = 3
    channels: int | None = None
    num_res_blocks: int | None = None
    outer_kernel_size: int | None = None
    upsample_mode: str | None = None
    residual_block: str | None = None
    space_to_depth: int | None = None
    arch: str | None = None
    style_name: str | None = None
    loss_network: str | None = None
    training: dict[str, Any] | None = None
    style_names: list[str] | None = None
    base: str | None = None
    base_revision: str | None = None

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
        check_choice("residual_block", self.residual_block, ("standard", "depthwise"))
        check_int("space_to_depth", self.space_to_depth, 1, 2)
        for name in ("style_name", "loss_network"):
            check_optional_str(name, getattr(self, name))
        if self.training is not None and not isinstance(self.training, dict):
            raise ConfigError("training must be a JSON object of hyper-parameters")
        if self.style_names is not None:
            multistyle.check_style_names(self.style_names)
        self._validate_base()

    def _validate_base(self) -> None:
        if self.base is None:
            if self.base_revision is not None:
                raise ConfigError("base_revision is set but base is not; an add-on names its base network")
            return
        check_optional_str("base", self.base)
        if not self.base.strip():
            raise ConfigError("base must name a network (a Hub repo id or a folder), got an empty string")
        if self.style_names is None:
            raise ConfigError("a config with a base must list its own styles in style_names")
        if self.base_revision is not None and not (isinstance(self.base_revision, str)
                                                   and re.fullmatch(r"[0-9a-f]{40}", self.base_revision)):
            raise ConfigError("base_revision must be a 40-character commit hash (the base's pinned revision)")

    @property
    def structure(self) -> dict[str, Any]:
        """The structural fields (what makes two networks' convolutions interchangeable)."""
        return {name: getattr(self, name) for name in ("in_channels", "out_channels", *ARCHITECTURES["johnson"])}

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        for name in self.OPTIONAL_FIELDS:
            if data[name] is None:
                del data[name]
        return data


def config_for_arch(arch: str, **fields: Any) -> TransformerConfig:
    """The config of a named variant (``johnson``, ``johnson-lite``, ``johnson-rt``), with
    metadata fields; the same as ``TransformerConfig(arch=arch, **fields)``."""
    return TransformerConfig(arch=arch, **fields)


class InstanceNorm2d(nn.InstanceNorm2d):
    """Affine instance norm that can record or reuse its statistics (see ``norm_stats``)."""

    def gamma_beta(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma, beta) shaped to broadcast over NxCxHxW: 1xCx1x1, or NxCx1x1 for per-image styles."""
        return self.weight.view(1, -1, 1, 1), self.bias.view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = active_norm_stats()
        if state is None:
            return self._normalize(x)
        mode, store = state
        if mode == "record":
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, unbiased=False)
            store[id(self)] = (mean, var)
            return self._normalize(x)
        mean, var = store[id(self)]
        weight, bias = self.gamma_beta()
        y = (x.float() - mean) * torch.rsqrt(var + self.eps)
        return (y * weight + bias).to(x.dtype)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


class ConditionalInstanceNorm2d(InstanceNorm2d):
    """Conditional instance norm (Dumoulin et al. 2017): ``weight`` and ``bias`` hold one
    (gamma, beta) row per style (``num_styles x C``). The row used is the convex combination
    given by :func:`fst.multistyle.style_mix` (the first style when none is set)."""

    def __init__(self, num_features: int, num_styles: int):
        super().__init__(num_features, affine=True)
        self.weight = nn.Parameter(torch.ones(num_styles, num_features))
        self.bias = nn.Parameter(torch.zeros(num_styles, num_features))

    def gamma_beta(self) -> tuple[torch.Tensor, torch.Tensor]:
        mix = multistyle.current_mix()
        channels = self.weight.shape[1]
        if mix is None:
            return self.weight[0].view(1, channels, 1, 1), self.bias[0].view(1, channels, 1, 1)
        mix = mix.to(self.weight.device, self.weight.dtype)
        if mix.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"style weights for {mix.shape[-1]} styles given to a network of {self.weight.shape[0]}")
        rows = -1 if mix.dim() == 2 else 1
        return (mix @ self.weight).view(rows, channels, 1, 1), (mix @ self.bias).view(rows, channels, 1, 1)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.gamma_beta()
        if weight.shape[0] == 1:   # one style (or blend) for the batch: the fused affine instance norm
            return F.instance_norm(x, weight=weight.flatten(), bias=bias.flatten(), eps=self.eps)
        return F.instance_norm(x, eps=self.eps) * weight.to(x.dtype) + bias.to(x.dtype)


def norm_factory(config: TransformerConfig):
    """What builds the network's instance norms: affine ones, or conditional ones with a row
    per style when ``config.style_names`` is set."""
    if config.style_names:
        count = len(config.style_names)
        return lambda channels: ConditionalInstanceNorm2d(channels, count)
    return lambda channels: InstanceNorm2d(channels, affine=True)


def norm_parameter_names(net: nn.Module) -> list[str]:
    """The names of the instance norms' (gamma, beta) tensors: all that differs between styles."""
    return [f"{name}.{tensor}" for name, module in net.named_modules() if isinstance(module, InstanceNorm2d)
            for tensor in ("weight", "bias")]


class ConvLayer(nn.Module):
    """Reflection padding followed by a convolution (keeps borders artifact-free)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv(self.conv2d, self.pad(x))


class SeparableConvLayer(nn.Module):
    """Reflection padding, a depthwise kxk convolution, then a pointwise 1x1 one (MobileNet)."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(self.pad(x)))


class ResidualBlock(nn.Module):
    """Two 3x3 conv + instance norm layers with an identity shortcut (He et al.);
    ``depthwise`` makes both convolutions depthwise-separable."""

    def __init__(self, channels: int, depthwise: bool = False, norm=None):
        super().__init__()
        layer = (lambda: SeparableConvLayer(channels, 3)) if depthwise else (lambda: ConvLayer(channels, channels, 3))
        norm = norm or (lambda size: InstanceNorm2d(size, affine=True))
        self.conv1 = layer()
        self.in1 = norm(channels)
        self.conv2 = layer()
        self.in2 = norm(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = active_path()
        if fast is not None and fast.inplace:
            return self.in2(self.conv2(torch.relu_(self.in1(self.conv1(x))))).add_(x)
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
        c, k, s = config.channels, config.outer_kernel_size, config.space_to_depth
        norm = norm_factory(config)
        self.conv1 = ConvLayer(config.in_channels * s * s, c, k)
        self.in1 = norm(c)
        self.conv2 = ConvLayer(c, 2 * c, 3, stride=2)
        self.in2 = norm(2 * c)
        self.conv3 = ConvLayer(2 * c, 4 * c, 3, stride=2)
        self.in3 = norm(4 * c)
        for index in range(1, config.num_res_blocks + 1):
            self.add_module(f"res{index}", ResidualBlock(4 * c, config.residual_block == "depthwise", norm))
        self.deconv1 = UpsampleConvLayer(4 * c, 2 * c, 3, config.upsample_mode)
        self.in4 = norm(2 * c)
        self.deconv2 = UpsampleConvLayer(2 * c, c, 3, config.upsample_mode)
        self.in5 = norm(c)
        self.deconv3 = ConvLayer(c, config.out_channels * s * s, k)
        self.relu = nn.ReLU()

    @property
    def total_stride(self) -> int:
        """Input sides are padded to a multiple of this (two stride-2 stages x space_to_depth)."""
        return 4 * self.config.space_to_depth

    @property
    def receptive_radius(self) -> int:
        """How far (in input pixels) an output pixel sees: tiles need at least this margin."""
        cfg = self.config
        scale = cfg.space_to_depth
        radius = (cfg.outer_kernel_size // 2) * scale + scale - 1
        radius += scale + 2 * scale                          # conv2 (at 1x), conv3 (at 2x)
        scale *= 4
        radius += 2 * cfg.num_res_blocks * scale             # two 3x3 convolutions per block
        radius += scale // 2 + scale // 4                    # the two upsampling convolutions
        return radius + (cfg.outer_kernel_size // 2) * (scale // 4)

    @property
    def res_blocks(self) -> list[ResidualBlock]:
        return [getattr(self, f"res{i}") for i in range(1, self.config.num_res_blocks + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        stride, s2d = self.total_stride, self.config.space_to_depth
        # A multiple of the stride, and at least 2x2 at the bottleneck (instance norm needs it).
        pad_h, pad_w = max((-height) % stride, 2 * stride - height), max((-width) % stride, 2 * stride - width)
        if pad_h or pad_w:
            x = pad_reflect_or_replicate(x, pad_w, pad_h)
        fast = active_path()
        if (fast is not None and fast.fused_norm and fast.subpixel_upsampling and fused.applies(self, x)
                and not (torch.is_grad_enabled() and (x.requires_grad or self._trainable()))):
            y = torch.sigmoid_(fused.forward(self, x))   # a fresh buffer: in place
        else:
            y = torch.sigmoid(self._plain_body(F.pixel_unshuffle(x, s2d) if s2d > 1 else x))
        if s2d > 1:
            y = F.pixel_shuffle(y, s2d)
        return y[..., :height, :width]

    def _trainable(self) -> bool:
        """Whether any parameter takes gradients (training only the norms freezes the rest)."""
        return any(p.requires_grad for p in self.parameters())

    def _plain_body(self, x: torch.Tensor) -> torch.Tensor:
        y = relu(self.in1(self.conv1(x)))
        y = relu(self.in2(self.conv2(y)))
        y = relu(self.in3(self.conv3(y)))
        for block in self.res_blocks:
            y = block(y)
        y = relu(self.in4(self.deconv1(y)))
        y = relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


class UpsampleConvLayer(nn.Module):
    """Nearest/bilinear x2 upsampling + reflection-padded conv (pytorch/examples' UpsampleConvLayer,
    with its tensor names)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mode: str):
        super().__init__()
        self.mode = mode
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = active_path()
        if (fast is not None and fast.subpixel_upsampling and self.mode == "nearest"
                and self.conv2d.kernel_size == (3, 3) and min(x.shape[-2:]) > 1):
            return self._subpixel(x)
        x = nn.functional.interpolate(x, scale_factor=2, mode=self.mode)
        return conv(self.conv2d, self.pad(x))

    def _subpixel(self, x: torch.Tensor) -> torch.Tensor:
        """The same result as forward, computed at the low resolution (see FastPath).

        Row 2i of the upsampled, reflection-padded image's 3x3 conv reads input rows
        (i-1, i, i) with taps (w0, w1, w2), row 2i+1 reads (i, i, i+1): two 2-tap
        kernels (w0, w1+w2) and (w0+w1, w2) on the replicate-padded input. Same for columns.
        """
        weight, bias = self.phase_weights(x.dtype)
        channels = weight.shape[0] // 4
        y = conv(self.conv2d, F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias)  # (B, 4C, H+1, W+1)
        phases = [y[:, (2 * a + b) * channels:(2 * a + b + 1) * channels,
                    a:y.shape[2] - 1 + a, b:y.shape[3] - 1 + b] for a in (0, 1) for b in (0, 1)]
        batch, _, height, width = phases[0].shape
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.is_grad_enabled():  # no index_put
            out = torch.stack(phases, 2).view(batch, channels, 2, 2, height, width).permute(0, 1, 4, 2, 5, 3)
            return out.reshape(batch, channels, 2 * height, 2 * width)
        out = y.new_empty(batch, channels, height, 2, width, 2)
        for index, phase in enumerate(phases):
            out[:, :, :, index // 2, :, index % 2] = phase
        return out.view(batch, channels, 2 * height, 2 * width)

    def phase_weights(self, dtype: torch.dtype, embed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The sub-pixel form of this layer's 3x3 convolution (see :meth:`_subpixel`): the four
        output phases' 2x2 kernels stacked on the output channels (4C x Cin x 2 x 2), and the bias
        repeated per phase, in ``dtype``. ``embed``: each kernel placed at offset (a, b) of a zero
        3x3 kernel (4C x Cin x 3 x 3), so all phases share one output grid (what :mod:`fst.fused`
        convolves).
        Cached per weights version outside autograd; differentiable when training."""
        weight, bias = self.conv2d.weight, self.conv2d.bias
        versions = (-1, -1) if weight.is_inference() else (weight._version, bias._version)  # no counter there
        key = (*versions, weight.data_ptr(), bias.data_ptr(), weight.device, dtype, embed)
        if torch.is_grad_enabled() and weight.requires_grad:  # training: differentiable, never cached
            return self._phase_weights_of(weight, bias, dtype, embed)
        cache = self.__dict__.setdefault("_phase_cache", {})
        if key in cache:
            return cache[key]
        with torch.no_grad():
            result = self._phase_weights_of(weight, bias, dtype, embed)
        if len(cache) > 4:
            cache.clear()
        cache[key] = result
        return result

    @staticmethod
    def _phase_weights_of(weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype,
                          embed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        # taps[a] maps the 3 original taps to the 2 taps of output phase a.
        taps = weight.new_tensor([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]])
        phase = torch.einsum("art,bsu,oitu->aboirs", taps, taps, weight)
        if embed:
            phase = torch.stack([F.pad(phase[a, b], (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)])
        return phase.reshape(-1, *phase.shape[-3:]).to(dtype).contiguous(), bias.repeat(4).to(dtype)


def pad_reflect_or_replicate(x: torch.Tensor, pad_w: int, pad_h: int) -> torch.Tensor:
    """Pad x (NxCxHxW) by ``pad_w`` columns on the right and ``pad_h`` rows at the bottom: by
    reflection when both sides exceed the pads (reflection needs that), else by replication.
    How :meth:`TransformerNet.forward` brings an input to its stride (ONNX callers do the same)."""
    mode = "reflect" if min(x.shape[-2:]) > max(pad_w, pad_h) else "replicate"
    return nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
