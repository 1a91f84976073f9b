"""Automatic colorization network of Iizuka, Simo-Serra and Ishikawa (2016).

"Let there be Color!: Joint End-to-end Learning of Global and Local Image Priors
for Automatic Image Colorization with Simultaneous Classification", SIGGRAPH 2016.

The network sees the lightness L* of a photo and predicts its chrominance a*b*::

    L (H x W) --> low-level features (shared) --> mid-level features --+
          \\                                                           fusion --> colorization --> ab (H/2 x W/2)
           resize 224x224 --> low-level features (shared) --> global --+
                                                                       \\--> classification (scene / object class)

Input and output normalisation (the model's I/O contract):

* input  ``L / 100``, i.e. L* in [0, 100] mapped to [0, 1];
* output ``ab_norm`` in [0, 1] (sigmoid); ``ab = ab_norm * 2 * AB_RANGE - AB_RANGE`` with
  ``AB_RANGE = 128``, so [0, 1] covers a*, b* in [-128, 128], which contains every sRGB
  colour (a* in [-86.2, 98.2], b* in [-107.9, 94.5]).

Departures from the paper, all deliberate: a width multiplier for slim variants,
inputs of any size (replicate-padded to a multiple of 8 and cropped back), and the
half-resolution chrominance is upsampled bilinearly inside the network, so the
output always has the input's size.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .color import lab_to_rgb_keep_lightness, merge_lab, rgb_to_gray_l
from .colorizer_parts import (AB_RANGE, GLOBAL_INPUT_SIZE, L_RANGE, TOTAL_STRIDE, ConvBlock, LinearBlock,
                              denormalize_ab, fold_batchnorms, global_view, normalize_ab, normalize_lightness,
                              padded_lightness, scaled as _scaled)
from .colorizer_vgg import VGGColorizerNet
from .config import BaseConfig, check_choice, check_float, check_int, check_optional_str
from .errors import ConfigError
from .hub import SafeHubMixin
from .inference import as_input, check_finite_output, check_optional_size, inference_context, resize_max_side

# --------------------------------------------------------------------------- config


#: Named variants: a name is enough to build one.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # The paper's network: 42.2 M parameters, 42.6 M with a 1000-class head.
    "iizuka": dict(backbone="iizuka", width=1.0),
    # CPU variant: a quarter of the widths, ~1/16 of the FLOPs: 2.7 M parameters.
    "iizuka-slim": dict(backbone="iizuka", width=0.25),
    # The shipped default: frozen ImageNet VGG16 (7.6 M) + trained branches (width 0.5: 2.4 M),
    # colour classes with annealed-mean decoding. See fst/colorizer_vgg.py.
    "vgg16-color": dict(backbone="vgg16", width=0.5),
}
#: Network families, by ``ColorizerConfig.backbone``.
BACKBONES = ("iizuka", "vgg16")


def build_network(config: ColorizerConfig) -> nn.Module:
    """The network a config describes: :class:`ColorizerNet` or :class:`VGGColorizerNet`."""
    return VGGColorizerNet(config) if config.backbone == "vgg16" else ColorizerNet(config)


@dataclasses.dataclass
class ColorizerConfig(BaseConfig):
    """Hyper-parameters of a :class:`ColorizerNet` (what ``config.json`` holds).

    Args:
        backbone: ``iizuka`` (the paper's network, trained from scratch, a*b* regressed) or
            ``vgg16`` (ImageNet VGG16 features, a*b* classes; see :mod:`fst.colorizer_vgg`).
            None (unset) takes the value of ``arch``.
        width: channel multiplier; 1.0 is the paper's network, smaller values build
            slim variants (every layer's width scales, except the 1-channel input and
            the 2-channel output). None (unset) takes the value of ``arch``.
        num_classes: size of the classification head (the paper's auxiliary scene
            classification); 0 builds no head.
        max_side: at inference, chrominance is predicted on a copy whose longer side is
            at most this; the result keeps the input's full-resolution lightness.
        ab_grid: ``vgg16``: size of the a*b* grid cells that form the colour classes.
        temperature: ``vgg16``: annealed-mean temperature (1 = the mean colour, lower = more vivid).
        encoder_normalisation: ``vgg16``: input normalisation the VGG16 weights expect.
        arch: name of a variant of :data:`ARCHITECTURES`; it fixes ``backbone`` and ``width``
            (a value that contradicts it is a ConfigError). Without it unset ones are the paper's.
        training: free-form training hyper-parameters (metadata).
        dataset: what the network was trained on (metadata).
    """

    MODEL_TYPE = "iizuka_colorizer"
    ARCHITECTURES = ARCHITECTURES
    DEFAULT_ARCH = "iizuka"

    model_type: str = "iizuka_colorizer"
    backbone: str | None = None
    width: float | None = None
    num_classes: int = 1000
    max_side: int = 512
    ab_grid: int = 10
    temperature: float = 0.38
    encoder_normalisation: str = "caffe"
    arch: str | None = None
    training: dict[str, Any] | None = None
    dataset: str | None = None

    def validate(self) -> None:
        check_choice("model_type", self.model_type, (self.MODEL_TYPE,))
        check_choice("backbone", self.backbone, BACKBONES)
        check_int("ab_grid", self.ab_grid, 5, 40)
        self.temperature = check_float("temperature", self.temperature, 0.01, 10.0)
        check_choice("encoder_normalisation", self.encoder_normalisation, ("caffe", "torchvision"))
        self.width = check_float("width", self.width, 0.05, 2.0)
        check_int("num_classes", self.num_classes, 0, 10000)
        check_int("max_side", self.max_side, 64, 4096)
        check_optional_str("dataset", self.dataset, max_len=1000)
        if self.training is not None and not isinstance(self.training, dict):
            raise ConfigError("training must be a JSON object of hyper-parameters")


def config_for_arch(arch: str, **fields: Any) -> ColorizerConfig:
    """The config of a named variant (``iizuka``, ``iizuka-slim``, ``vgg16-color``), with its other fields;
    the same as ``ColorizerConfig(arch=arch, **fields)``."""
    return ColorizerConfig(arch=arch, **fields)


# --------------------------------------------------------------------------- layers


class LowLevelFeatures(nn.Sequential):
    """Shared by the local and global paths: 1/8 resolution by stride-2 convs, not pooling."""

    def __init__(self, width: float):
        c = lambda n: _scaled(n, width)  # noqa: E731 - reads like the paper's table
        super().__init__(
            ConvBlock(1, c(64), stride=2),
            ConvBlock(c(64), c(128)),
            ConvBlock(c(128), c(128), stride=2),
            ConvBlock(c(128), c(256)),
            ConvBlock(c(256), c(256), stride=2),
            ConvBlock(c(256), c(512)),
        )


class MidLevelFeatures(nn.Sequential):
    """Local features at 1/8 resolution."""

    def __init__(self, width: float):
        c = lambda n: _scaled(n, width)  # noqa: E731
        super().__init__(ConvBlock(c(512), c(512)), ConvBlock(c(512), c(256)))


class GlobalFeatures(nn.Module):
    """From the 28x28 low-level map of the 224x224 input to one vector per image."""

    def __init__(self, width: float):
        super().__init__()
        c = lambda n: _scaled(n, width)  # noqa: E731
        self.convs = nn.Sequential(
            ConvBlock(c(512), c(512), stride=2),
            ConvBlock(c(512), c(512)),
            ConvBlock(c(512), c(512), stride=2),
            ConvBlock(c(512), c(512)),
        )
        side = GLOBAL_INPUT_SIZE // TOTAL_STRIDE // 4  # 7: two more stride-2 convs
        self.fc1 = LinearBlock(c(512) * side * side, c(1024))
        self.fc2 = LinearBlock(c(1024), c(512))
        self.fc3 = LinearBlock(c(512), c(256))

    def forward(self, low_level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (256-d vector for the fusion layer, 512-d vector for classification)."""
        x = self.convs(low_level).flatten(1)
        mid_vector = self.fc2(self.fc1(x))
        return self.fc3(mid_vector), mid_vector


class ClassificationHead(nn.Sequential):
    """Predicts the image's class from the 512-d global features (training signal only)."""

    def __init__(self, width: float, num_classes: int):
        c = lambda n: _scaled(n, width)  # noqa: E731
        super().__init__(LinearBlock(c(512), c(256)), nn.Linear(c(256), num_classes))


class FusionLayer(nn.Module):
    """Tiles the global vector over the mid-level map, concatenates, mixes with a 1x1 conv."""

    def __init__(self, width: float):
        super().__init__()
        c = lambda n: _scaled(n, width)  # noqa: E731
        self.mix = ConvBlock(c(256) + c(256), c(256), kernel_size=1)

    def forward(self, mid_level: torch.Tensor, global_vector: torch.Tensor) -> torch.Tensor:
        tiled = global_vector[:, :, None, None].expand(-1, -1, *mid_level.shape[-2:])
        return self.mix(torch.cat((mid_level, tiled.to(mid_level.dtype)), dim=1))


class ColorizationNetwork(nn.Module):
    """Decoder from the fused 1/8 map to a*b* at 1/2 resolution, in [0, 1] (sigmoid)."""

    def __init__(self, width: float):
        super().__init__()
        c = lambda n: _scaled(n, width)  # noqa: E731
        self.conv1 = ConvBlock(c(256), c(128))
        self.conv2 = ConvBlock(c(128), c(64))
        self.conv3 = ConvBlock(c(64), c(64))
        self.conv4 = ConvBlock(c(64), c(32))
        self.output = nn.Conv2d(c(32), 2, 3, padding=1)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        x = self.upsample(self.conv1(fused))
        x = self.upsample(self.conv3(self.conv2(x)))
        return torch.sigmoid(self.output(self.conv4(x)))


# --------------------------------------------------------------------------- network


class ColorizerNet(nn.Module):
    """The Iizuka et al. network: normalised L (Bx1xHxW) -> (normalised ab Bx2xHxW, class logits).

    Any H x W works (1x1 included): the input is replicate-padded to a multiple of 8
    and the output cropped back. The global branch always sees the input resized to
    224x224; at exactly 224x224 the low-level features are computed once and shared.
    Class logits are ``None`` when ``num_classes`` is 0. In training mode the batch
    must hold at least 2 images (batch norm after the fully connected layers).
    """

    def __init__(self, config: ColorizerConfig):
        super().__init__()
        self.config = config
        self.low_level = LowLevelFeatures(config.width)
        self.mid_level = MidLevelFeatures(config.width)
        self.global_features = GlobalFeatures(config.width)
        self.fusion = FusionLayer(config.width)
        self.colorization = ColorizationNetwork(config.width)
        self.classifier = ClassificationHead(config.width, config.num_classes) if config.num_classes else None
        self.batchnorm_folded = False

    def forward(self, lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        height, width = lightness.shape[-2:]
        local = self.low_level(padded_lightness(lightness, TOTAL_STRIDE))
        if (height, width) == (GLOBAL_INPUT_SIZE, GLOBAL_INPUT_SIZE):
            global_low = local  # the paper's training setting: one low-level pass for both paths
        else:
            global_low = self.low_level(global_view(lightness, GLOBAL_INPUT_SIZE))
        global_vector, class_features = self.global_features(global_low)
        fused = self.fusion(self.mid_level(local), global_vector)
        ab_half = self.colorization(fused)
        # upsample the padded map, then crop, so pixel centres stay aligned with the input
        ab = F.interpolate(ab_half, scale_factor=2, mode="bilinear", align_corners=False)[..., :height, :width]
        logits = self.classifier(class_features) if self.classifier is not None else None
        return ab, logits

    def fold_batchnorm(self) -> "ColorizerNet":
        """Fold every batch norm into the layer before it, in place, for faster inference.

        Switches to eval mode (folding uses the running statistics). Irreversible: the
        network can no longer be trained or saved in the Hub layout afterwards.
        """
        fold_batchnorms(self)
        self.batchnorm_folded = True
        return self


# --------------------------------------------------------------------------- user API


class Colorizer(
    SafeHubMixin,
    nn.Module,
    library_name="fst",
    tags=["image-colorization", "image-to-image"],
    repo_url="https://huggingface.co/docs/hub/model-cards",
    paper_url="https://doi.org/10.1145/2897824.2925974",
):
    """Automatic colorization of grayscale photos (Iizuka et al. 2016).

    >>> model = Colorizer.from_pretrained("user/colorizer")
    >>> colour = model(Image.open("old_photo.jpg"))        # PIL in, PIL out

    Construct with a :class:`ColorizerConfig` or its fields as keyword arguments.
    Calling the model colorizes an image (see :meth:`colorize`); in training mode, calling
    it on a Bx1xHxW tensor of normalised lightness runs the network (:meth:`forward`).
    """

    config_class = ColorizerConfig
    network_class = staticmethod(build_network)

    def __init__(self, config: ColorizerConfig | Mapping[str, Any] | None = None, **fields: Any):
        super().__init__()
        self._setup(config, fields)

    def save_pretrained(self, *args: Any, **kwargs: Any) -> str | None:  # noqa: D102
        if self.net.batchnorm_folded:
            raise RuntimeError("this Colorizer's batch norms were folded for inference; save the unfolded model")
        return super().save_pretrained(*args, **kwargs)

    def forward(self, lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalised L (Bx1xHxW) -> (normalised ab, class logits); differentiable, for training."""
        return self.net(lightness)

    def __call__(self, image: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """The same rule as FastStyle: in training mode a tensor goes through :meth:`forward`
        (normalised L -> (normalised ab, logits)); otherwise ``model(x)`` is :meth:`colorize`."""
        if self.training and isinstance(image, torch.Tensor):
            return super().__call__(image)
        return self.colorize(image, **kwargs)

    def fold_batchnorm(self) -> "Colorizer":
        """Fold batch norms into the convolutions (faster inference; the model can no longer be saved)."""
        with self._device_lock:
            self.net.fold_batchnorm()
        return self

    @torch.inference_mode()
    def colorize(self, image: Any, *, max_side: int | None = None) -> Any:
        """Colorize one image; returns the same kind at the input's size.

        Accepts a PIL image, a gray (HxW, HxWx1) or colour (HxWx3) array, a gray (1xHxW,
        1x1xHxW) or colour (3xHxW, 1x3xHxW) tensor, a path or bytes (PIL image out); values
        and dtypes follow ``fst.inference``'s rule, and the result is 3-channel. Colour inputs
        are converted to gray first, so they are re-colorized. The chrominance is predicted on a copy whose
        longer side is at most ``max_side`` (default ``config.max_side``) and upsampled;
        the lightness L* of the result is the input's, at full resolution.
        """
        max_side = check_optional_size("max_side", max_side, 8) or self.config.max_side
        source = as_input(image)
        self._prepare_for_inference()
        device = self.device
        lightness = rgb_to_gray_l(source.tensor.to(device))  # 1x1xHxW in [0, 100]
        ab = self.predict_ab(lightness, max_side=max_side)
        rgb = lab_to_rgb_keep_lightness(merge_lab(lightness, ab))
        return source.restore(rgb.cpu())

    def predict_ab(self, lightness: torch.Tensor, *, max_side: int | None = None) -> torch.Tensor:
        """a*b* (Bx2xHxW, float32) for L* in [0, 100] (Bx1xHxW), predicted at <= max_side."""
        max_side = max_side or self.config.max_side
        small = resize_max_side(normalize_lightness(lightness.float()), max_side)
        with inference_context(lightness.device):
            ab_norm, _ = self.net(small)
        ab = check_finite_output(denormalize_ab(ab_norm.float()))
        if ab.shape[-2:] != lightness.shape[-2:]:
            ab = F.interpolate(ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False)
        return ab

    def _prepare_for_inference(self) -> None:
        # Mode switches mutate the module: do them once, under the lock, never per call.
        if self.training:
            with self._device_lock:
                self.eval()

    @staticmethod
    def explain_mismatch(config: Any, found: Mapping[str, tuple[int, ...]]) -> str | None:
        """Name the config value (width / num_classes) that disagrees with the weights."""
        hints = []
        first = found.get("low_level.0.conv.weight")
        expected = _scaled(64, config.width)
        if first and len(first) == 4 and first[0] != expected:
            hints.append(f"width={config.width} in config.json gives {expected} channels in the first layer "
                         f"but the weights have {first[0]}")
        head = found.get("classifier.1.weight")
        if head and head[0] != config.num_classes:
            hints.append(f"num_classes={config.num_classes} in config.json but the weights have {head[0]} classes")
        elif not head and config.num_classes:
            hints.append(f"num_classes={config.num_classes} in config.json but the weights have no classifier "
                         "(set num_classes to 0)")
        return "; ".join(hints) or None


__all__ = ["AB_RANGE", "ARCHITECTURES", "Colorizer", "ColorizerConfig", "ColorizerNet", "GLOBAL_INPUT_SIZE",
           "config_for_arch", "denormalize_ab", "normalize_ab", "normalize_lightness"]
