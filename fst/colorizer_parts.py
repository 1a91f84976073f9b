"""Building blocks shared by the colorization networks: the L/ab normalisation of their
inputs and outputs, and conv/linear -> batch norm -> ReLU blocks that fold for inference."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: a*, b* are normalised as (ab + AB_RANGE) / (2 * AB_RANGE) -> [0, 1].
AB_RANGE = 128.0
#: L* is normalised as L / L_RANGE -> [0, 1].
L_RANGE = 100.0
#: The global features network always sees the input resized to this square.
GLOBAL_INPUT_SIZE = 224
#: Total stride of the low-level features network (three stride-2 convolutions).
TOTAL_STRIDE = 8


def normalize_lightness(lightness: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] -> network input in [0, 1]."""
    return lightness / L_RANGE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """a*b* in [-AB_RANGE, AB_RANGE] -> training target in [0, 1]."""
    return (ab + AB_RANGE) / (2.0 * AB_RANGE)


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    """Network output in [0, 1] -> a*b* in [-AB_RANGE, AB_RANGE]."""
    return ab_norm * (2.0 * AB_RANGE) - AB_RANGE


def _fold_batchnorm_into(layer: nn.Conv2d | nn.Linear, norm: nn.modules.batchnorm._BatchNorm) -> None:
    """Rewrite ``layer`` so that ``layer(x)`` equals ``norm(layer(x))`` in eval mode."""
    with torch.no_grad():
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        bias = layer.bias if layer.bias is not None else torch.zeros_like(norm.running_mean)
        layer.weight.mul_(scale.view(-1, *([1] * (layer.weight.dim() - 1))))
        layer.bias = nn.Parameter((bias - norm.running_mean) * scale + norm.bias)


class ConvBlock(nn.Module):
    """3x3 (or 1x1) convolution -> batch norm -> ReLU, zero padding as in the paper."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        # no conv bias: batch norm's shift replaces it (a bias appears when BN is folded)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))

    def fold_batchnorm(self) -> None:
        """Merge the batch norm into the convolution (inference only)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            _fold_batchnorm_into(self.conv, self.bn)
            self.bn = nn.Identity()


class LinearBlock(nn.Module):
    """Fully connected layer -> batch norm -> ReLU."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features, bias=False)
        self.bn: nn.Module = nn.BatchNorm1d(out_features)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.fc(x)))

    def fold_batchnorm(self) -> None:
        """Merge the batch norm into the linear layer (inference only)."""
        if isinstance(self.bn, nn.BatchNorm1d):
            _fold_batchnorm_into(self.fc, self.bn)
            self.bn = nn.Identity()


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, at least 1."""
    return max(1, round(channels * width))


def padded_lightness(lightness: torch.Tensor, stride: int) -> torch.Tensor:
    """Normalised L (Bx1xHxW, checked) replicate-padded so H and W are multiples of ``stride``."""
    if lightness.dim() != 4 or lightness.shape[1] != 1:
        raise ValueError(f"expected normalised L of shape Bx1xHxW, got {tuple(lightness.shape)}")
    pad_h, pad_w = (-lightness.shape[-2]) % stride, (-lightness.shape[-1]) % stride
    return F.pad(lightness, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else lightness


def global_view(lightness: torch.Tensor, size: int) -> torch.Tensor:
    """The whole (unpadded) input resized to ``size`` x ``size``: what the global branch sees,
    so replicated borders do not skew it."""
    return F.interpolate(lightness, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def fold_batchnorms(network: nn.Module) -> None:
    """Fold every :class:`ConvBlock` / :class:`LinearBlock` batch norm of ``network`` (eval mode first)."""
    network.eval()
    for module in network.modules():
        if isinstance(module, (ConvBlock, LinearBlock)):
            module.fold_batchnorm()
