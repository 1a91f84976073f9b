"""Iizuka et al.'s colorization design on an ImageNet-trained VGG16 encoder, predicting colour classes.

The low- and mid-level features come from a frozen VGG16 (the project's loss network,
conv1_1 .. relu4_3), which brings what 1,300 photos cannot teach: ImageNet's knowledge of
skies, plants, skin and objects. On top of it, Iizuka et al.'s branches::

    L -> gray sRGB -> VGG16 -> relu3_3 (1/4) -------------------------------+
                            -> relu4_3 (1/8) -> mid-level -> fusion -> up x2 -+-> colour net -> ab classes (1/4)
    L resized 224x224 -> VGG16 -> relu4_3 -> global features ---^
                                                             \\--> classification (auxiliary)

Colour is predicted as a distribution over the in-gamut a*b* bins of a grid of 10
(Zhang, Isola, Efros 2016), trained with class rebalancing, and decoded by the annealed
mean (softmax at a temperature below 1, then the expectation): regression of a*b* with
MSE averages the plausible colours of an object into sepia.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .color import lab_to_rgb, merge_lab, rgb_to_lab
from .colorizer_parts import (ConvBlock, LinearBlock, fold_batchnorms, global_view, normalize_ab,
                              padded_lightness, scaled)
from .vgg import VGG16Features

if TYPE_CHECKING:  # pragma: no cover
    from .colorizer import ColorizerConfig

#: Stride of relu4_3 (three 2x2 max-pools): inputs are padded to a multiple of it.
ENCODER_STRIDE = 8
#: The global branch sees the photo at this square size (as in Iizuka et al.).
GLOBAL_SIZE = 224


@functools.lru_cache(maxsize=4)
def ab_bin_centres(grid: int = 10) -> torch.Tensor:
    """Centres (Qx2, a* then b*) of the a*b* grid cells that some sRGB colour falls into.

    With a grid of 10 this gives Zhang et al.'s in-gamut quantisation (~300 bins). Computed
    from a dense sample of the sRGB cube, so it needs no data file.
    """
    levels = torch.linspace(0.0, 1.0, 65, dtype=torch.float64, device="cpu")   # also under a meta-device build
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1, 1)
    ab = rgb_to_lab(cube)[1:].reshape(2, -1).T
    cells = torch.unique(torch.round(ab / grid), dim=0)
    return (cells * grid).float().contiguous()


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    """a*b* (Bx2xHxW) from bin logits (BxQxHxW): the mean of softmax(logits / T) over bin centres.

    T = 1 is the mean of the predicted distribution (safe but desaturated), T -> 0 its
    mode (vivid but patchy); Zhang et al. use 0.38.
    """
    probabilities = torch.softmax(logits.float() / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", probabilities, centres.to(probabilities))


def gray_rgb(lightness: torch.Tensor) -> torch.Tensor:
    """Normalised L (Bx1xHxW, L*/100) -> the gray sRGB image of that lightness (Bx3xHxW)."""
    lightness = lightness.float() * 100.0
    return lab_to_rgb(merge_lab(lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)))


class VGGColorizerNet(nn.Module):
    """Normalised L (Bx1xHxW) -> (normalised a*b* Bx2xHxW, class logits or None).

    :meth:`encode` (frozen VGG16, no gradients) and :meth:`head` (the trained part)
    are separate so training can cache the encoder's features.
    """

    def __init__(self, config: "ColorizerConfig"):
        super().__init__()
        self.config = config
        c = lambda n: scaled(n, config.width)  # noqa: E731 - reads like a layer table
        self.encoder = VGG16Features(normalisation=config.encoder_normalisation, last_layer="relu4_3")
        # 1x1 first: the 512 VGG channels are reduced before the 3x3 context conv (a third of the cost)
        self.mid_level = nn.Sequential(ConvBlock(512, c(256), kernel_size=1), ConvBlock(c(256), c(256)))
        self.global_convs = nn.Sequential(ConvBlock(512, c(256), stride=2), ConvBlock(c(256), c(256), stride=2))
        side = GLOBAL_SIZE // ENCODER_STRIDE // 4  # 7
        self.global_fc = nn.Sequential(LinearBlock(c(256) * side * side, c(512)), LinearBlock(c(512), c(256)))
        self.classifier = nn.Linear(c(256), config.num_classes) if config.num_classes else None
        self.fusion = ConvBlock(2 * c(256), c(256), kernel_size=1)
        self.skip = ConvBlock(256, c(128), kernel_size=1)
        self.colorization = nn.Sequential(ConvBlock(c(256) + c(128), c(128)), ConvBlock(c(128), c(128)))
        self.register_buffer("centres", ab_bin_centres(config.ab_grid).clone(), persistent=False)
        self.output = nn.Conv2d(c(128), len(self.centres), 1)
        self.batchnorm_folded = False

    @torch.no_grad()
    def encode(self, lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """relu3_3 and relu4_3 of the gray image (H and W multiples of 8)."""
        features = self.encoder(gray_rgb(lightness), ("relu3_3", "relu4_3"))
        return features["relu3_3"], features["relu4_3"]

    def head(self, relu3_3: torch.Tensor, relu4_3: torch.Tensor,
             global_relu4_3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(a*b* bin logits at 1/4 resolution, class logits or None) from encoder features."""
        side = GLOBAL_SIZE // ENCODER_STRIDE // 4   # 7x7 at 224 px; other training crops are pooled to it
        global_map = F.adaptive_avg_pool2d(self.global_convs(global_relu4_3), side)
        global_vector = self.global_fc(global_map.flatten(1))
        mid = self.mid_level(relu4_3)
        tiled = global_vector[:, :, None, None].expand(-1, -1, *mid.shape[-2:])
        fused = self.fusion(torch.cat((mid, tiled.to(mid.dtype)), dim=1))
        up = F.interpolate(fused, size=relu3_3.shape[-2:], mode="nearest")
        colour = self.colorization(torch.cat((up, self.skip(relu3_3)), dim=1))
        logits = self.classifier(global_vector) if self.classifier is not None else None
        return self.output(colour), logits

    def forward(self, lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        height, width = lightness.shape[-2:]
        relu3_3, relu4_3 = self.encode(padded_lightness(lightness, ENCODER_STRIDE))
        if (height, width) == (GLOBAL_SIZE, GLOBAL_SIZE):
            global_relu4_3 = relu4_3
        else:
            global_relu4_3 = self.encode(global_view(lightness, GLOBAL_SIZE))[1]
        bin_logits, class_logits = self.head(relu3_3, relu4_3, global_relu4_3)
        ab = annealed_mean(bin_logits, self.centres, self.config.temperature)
        ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)[..., :height, :width]
        return normalize_ab(ab), class_logits

    def fold_batchnorm(self) -> "VGGColorizerNet":
        """Fold every batch norm into the layer before it (inference only, irreversible)."""
        fold_batchnorms(self)
        self.batchnorm_folded = True
        return self

    def train(self, mode: bool = True) -> "VGGColorizerNet":
        super().train(mode)
        self.encoder.train(False)  # frozen
        return self


__all__ = ["VGGColorizerNet", "ab_bin_centres", "annealed_mean", "gray_rgb"]
