"""ArbitraryStyle: any painting as the style, in one feed-forward pass (no training per style).

The method is multi-level whitening and colouring (Li et al. 2017, "Universal Style
Transfer via Feature Transforms"): the project's frozen VGG16 encodes the photo; at each
level, coarse to fine (relu4_1, relu3_1, relu2_1, relu1_1), the features are whitened and
coloured with the painting's covariance and mean (:mod:`fst.wct`) and a decoder turns them
back into an image, which the next, finer level refines. The decoders are trained only to
invert the encoder (reconstruction of photos), so no collection of paintings is needed:
the style comes entirely from the painting's feature statistics, which match the Gram
matrices a perceptual style loss compares.

    >>> model = ArbitraryStyle.from_pretrained("models/arbitrary")
    >>> styled = model(photo, style="my_painting.jpg", strength=0.8)

A painting's statistics are computed once per (painting, style size) and cached; pass
``model.style_statistics(painting)`` as ``style`` to hold on to them explicitly.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from .brush import check_style_scale, stylize_at_scale
from .config import BaseConfig, check_choice, check_float, check_int, check_optional_str
from .errors import ConfigError, InvalidImageError
from .faststyle import finish_styled
from .hub import SafeHubMixin
from .inference import (as_input, check_finite_output, check_optional_size, check_unit_interval, inference_context,
                        resize_max_side)
from .tiling import apply_in_tiles, auto_tile
from .vgg import NORMALISATIONS, VGG16Features
from .wct import AffineMap, FeatureStats, wct_map

#: The encoder layers a decoder can start from, and their VGG16 widths.
LEVEL_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}
#: Named variants, by their levels (decoders at half VGG16's widths): ``wct`` has Li et al.'s
#: four (up to relu4_1, as their relu5_1 is beyond the project's VGG16 weights); ``wct3`` and
#: ``wct2`` leave out the deepest ones: fewer of a painting's large shapes, more of the photo's
#: content, and faster.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "wct": dict(levels=["relu4_1", "relu3_1", "relu2_1", "relu1_1"], decoder_width=0.5),
    "wct3": dict(levels=["relu3_1", "relu2_1", "relu1_1"], decoder_width=0.5),
    "wct2": dict(levels=["relu2_1", "relu1_1"], decoder_width=0.5),
}
MIN_SIDE = 16                      # smaller photos are padded up to this and cropped back
MIN_STYLE_SIDE = 16                # a style image needs at least this many pixels per side
TILE_BLEND = 16                    # tiles are cross-faded over this many pixels
BORDER = 16                        # reflected margin around the photo: no zero-padding edge in the features
PLAN_MAX_SIDE = 1024               # a tiled photo's transforms are computed on it at this size
STYLE_CACHE_SIZE = 8               # paintings whose statistics are kept


def _depth(level: str) -> int:
    """1 for relu1_1 ... 4 for relu4_1: the number of VGG16 blocks the level sits in."""
    return int(level[4])


@dataclasses.dataclass
class ArbitraryConfig(BaseConfig):
    """What ``config.json`` holds for an :class:`ArbitraryStyle` network.

    ``levels`` are the VGG16 layers at which the painting's statistics are imposed, coarse
    to fine, one decoder each; ``decoder_width`` scales the decoders' channels against
    VGG16's. ``normalisation`` is the input normalisation of the embedded encoder weights
    (``caffe`` or ``torchvision``); ``style_size`` is the longer side a painting is resized
    to before its statistics are taken (the brush size relative to the photo).
    """

    MODEL_TYPE = "fst_arbitrary"
    ARCHITECTURES = ARCHITECTURES
    DEFAULT_ARCH = "wct"

    model_type: str = "fst_arbitrary"
    arch: str | None = None
    levels: list[str] | None = None
    decoder_width: float | None = None
    normalisation: str = "caffe"
    style_size: int = 512
    loss_network: str | None = None
    training: dict[str, Any] | None = None

    def validate(self) -> None:
        check_choice("model_type", self.model_type, (self.MODEL_TYPE,))
        if not isinstance(self.levels, list) or not 1 <= len(self.levels) <= len(LEVEL_CHANNELS):
            raise ConfigError(f"levels must be a list of 1 to 4 of {', '.join(LEVEL_CHANNELS)}")
        for level in self.levels:
            check_choice("levels", level, tuple(LEVEL_CHANNELS))
        if len(set(self.levels)) != len(self.levels) or self.levels != sorted(self.levels, reverse=True):
            raise ConfigError(f"levels must be distinct and ordered coarse to fine, got {self.levels}")
        self.decoder_width = check_float("decoder_width", self.decoder_width, 0.125, 1.0)
        check_choice("normalisation", self.normalisation, tuple(NORMALISATIONS))
        check_int("style_size", self.style_size, 64, 4096)
        check_optional_str("loss_network", self.loss_network)
        if self.training is not None and not isinstance(self.training, dict):
            raise ConfigError("training must be an object")


class ReflectConv(nn.Conv2d):
    """3x3 convolution with reflection padding (no dark borders), through NNPACK on CPU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return winograd.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.weight, self.bias)


class Decoder(nn.Sequential):
    """Inverts VGG16 from one level: per block, a convolution to the next block's width,
    a nearest 2x upsampling (no checkerboard) and a second convolution; then RGB.

    The features are first divided by ``input_scale``, the scale the encoder's input
    normalisation gives them (caffe-style weights see pixels in 0..255), so every decoder
    starts training at a sensible output scale."""

    def __init__(self, level: str, width: float, input_scale: float = 1.0):
        widths = list(LEVEL_CHANNELS.values())
        layers: list[nn.Module] = []
        channels = widths[_depth(level) - 1]
        for block in range(_depth(level) - 1, 0, -1):
            out = max(8, round(widths[block - 1] * width))
            layers += [ReflectConv(channels, out), nn.ReLU(inplace=True), nn.Upsample(scale_factor=2),
                       ReflectConv(out, out), nn.ReLU(inplace=True)]
            channels = out
        layers.append(ReflectConv(channels, 3))
        super().__init__(*layers)
        self.input_scale = input_scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return super().forward(features / self.input_scale)


class ArbitraryNet(nn.Module):
    """The frozen VGG16 encoder (up to the deepest level) and one decoder per level."""

    def __init__(self, config: ArbitraryConfig):
        super().__init__()
        self.levels = list(config.levels)
        deepest = max(self.levels, key=_depth)
        self.encoder = VGG16Features(config.normalisation, last_layer=deepest)
        norm = NORMALISATIONS[config.normalisation]
        input_scale = norm["scale"] * len(norm["std"]) / sum(norm["std"])
        self.decoders = nn.ModuleDict({level: Decoder(level, config.decoder_width, input_scale)
                                       for level in self.levels})
        #: Inputs are padded to a multiple of this (the deepest level's stride).
        self.total_stride = 2 ** (_depth(deepest) - 1)
        #: Pixels one output pixel depends on, each way (encoder + decoder, summed over levels).
        self.receptive_radius = sum(2 * _radius(_depth(level)) for level in self.levels)

    def encode(self, x: torch.Tensor, level: str) -> torch.Tensor:
        """VGG16 features of RGB x in [0, 1] at ``level``."""
        return self.encoder(x, [level])[level]

    def reconstruct(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(features, decoded image) per level for Bx3xHxW x (H, W multiples of total_stride):
        what the decoders are trained on."""
        features = self.encoder(x, self.levels)
        return features, {level: self.decoders[level](features[level]) for level in self.levels}

    def transfer(self, x: torch.Tensor, maps: Sequence[AffineMap] | None = None,
                 style: Mapping[str, FeatureStats] | None = None, strength: float = 1.0,
                 levels: Sequence[str] | None = None) -> tuple[torch.Tensor, list[AffineMap]]:
        """x (1x3xHxW in [0, 1], H, W multiples of total_stride) through ``levels`` (default:
        all), coarse to fine. Each level's transform is ``maps[i]`` when given (tiles of one
        image share them), else computed from x's own features and ``style``. Returns the
        image and the maps."""
        used: list[AffineMap] = []
        for index, level in enumerate(levels or self.levels):
            features = self.encode(x, level)
            transform = maps[index] if maps is not None else wct_map(features, style[level], strength)
            x = self.decoders[level](transform(features)).clamp_(0, 1)
            used.append(transform)
        return x, used


def _radius(depth: int) -> int:
    """Receptive radius of VGG16 up to block ``depth``'s first convolution (3x3 convs, 2x pools)."""
    radius, stride = 0, 1
    for block in range(1, depth + 1):
        convs = 1 if block == depth else (2 if block <= 2 else 3)
        radius += convs * stride
        if block < depth:
            radius += stride   # the 2x2 pool
            stride *= 2
    return radius


@dataclasses.dataclass(frozen=True)
class StyleStatistics:
    """A painting's feature statistics at each level: what ``style=`` needs, computed once."""

    levels: Mapping[str, FeatureStats]


class ArbitraryStyle(
    SafeHubMixin,
    nn.Module,
    library_name="fst",
    tags=["arbitrary-style-transfer", "style-transfer", "image-to-image"],
    repo_url="https://huggingface.co/docs/hub/model-cards",
):
    """Style transfer with any painting as the style (see the module docstring).

    >>> model = ArbitraryStyle.from_pretrained("models/arbitrary")   # or "user/arbitrary"
    >>> styled = model(Image.open("photo.jpg"), style=Image.open("painting.jpg"))
    """

    config_class = ArbitraryConfig
    network_class = ArbitraryNet

    def __init__(self, config: ArbitraryConfig | Mapping[str, Any] | None = None, **fields: Any):
        super().__init__()
        self._setup(config, fields)
        self._style_cache: collections.OrderedDict[str, StyleStatistics] = collections.OrderedDict()
        self._cache_lock = threading.Lock()

    def __call__(self, image: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """``model(photo, style=painting, ...)`` is :meth:`stylize`."""
        return self.stylize(image, **kwargs)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Bx3xHxW in [0, 1] -> the decoders' reconstructions per level (for training)."""
        return self.net.reconstruct(x)[1]

    @torch.inference_mode()
    def style_statistics(self, style: Any, style_size: int | None = None) -> StyleStatistics:
        """The statistics of a painting (a path, bytes, PIL image, array or tensor, decoded
        as safely as any photo), resized so its longer side is ``style_size`` (default
        ``config.style_size``). Cached: the same painting again costs a hash."""
        if isinstance(style, StyleStatistics):
            return style
        size = check_optional_size("style_size", style_size, 64) or self.config.style_size
        if size > 4096:
            raise ValueError(f"style_size must be at most 4096, got {size}")
        painting = as_input(style).tensor
        height, width = painting.shape[-2:]
        if min(height, width) < MIN_STYLE_SIDE:
            raise InvalidImageError(f"the style image is {width}x{height} pixels: too small to carry a style; "
                                    f"use a painting at least {MIN_STYLE_SIDE}x{MIN_STYLE_SIDE}")
        key = hashlib.sha1(painting.numpy().tobytes() + f"{size}".encode()).hexdigest()
        with self._cache_lock:
            if key in self._style_cache:
                self._style_cache.move_to_end(key)
                return self._style_cache[key]
        stats = self._compute_statistics(painting, size)
        with self._cache_lock:
            self._style_cache[key] = stats
            while len(self._style_cache) > STYLE_CACHE_SIZE:
                self._style_cache.popitem(last=False)
        return stats

    def _compute_statistics(self, painting: torch.Tensor, size: int) -> StyleStatistics:
        height, width = painting.shape[-2:]
        scale = size / max(height, width)
        shape = (max(MIN_STYLE_SIDE, round(height * scale)), max(MIN_STYLE_SIDE, round(width * scale)))
        resized = F.interpolate(painting, size=shape, mode="bilinear", antialias=scale < 1,
                                align_corners=False).clamp_(0, 1)
        with inference_context(self.device):
            features = self.net.encoder(resized.to(self.device), self.net.levels)
        levels = {level: FeatureStats.of(check_finite_output(features[level].float()))
                  for level in self.net.levels}
        return StyleStatistics(levels)

    @torch.inference_mode()
    def stylize(
        self,
        image: Any,
        style: Any,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        tile: int | None = None,
        style_scale: float = 1.0,
        style_size: int | None = None,
        levels: int | None = None,
    ) -> Any:
        """Stylize one image with ``style`` (a painting, or its :meth:`style_statistics`);
        returns the same kind, dtype and layout as ``image`` (see ``fst.inference``).

        Args:
            strength: 0 returns the photo, 1 the full transfer; applied to the features at
                every level (a smoother blend than mixing pixels).
            preserve_color: keep the photo's colours (transfer luminance only, in Lab).
            max_side: downscale so the longer side is at most this (faster).
            tile: tile size for bounded memory; photos above 4 Mpx are tiled automatically.
            style_scale: brush size: the transfer runs at the photo's size divided by this
                and is upsampled, so 2 paints strokes twice as large.
            style_size: the longer side the painting is resized to (default
                ``config.style_size``); smaller gives larger strokes.
            levels: use only the finest this many levels (faster, e.g. for a webcam on a CPU;
                less of the painting's larger shapes); default all.
        """
        strength = check_unit_interval("strength", strength)
        style_scale = check_style_scale(style_scale)
        max_side = check_optional_size("max_side", max_side, MIN_SIDE)
        tile = check_optional_size("tile", tile, 64)
        used = self._levels(levels)
        source = as_input(image)
        stats = self.style_statistics(style, style_size)
        content = resize_max_side(source.tensor, max_side)
        if strength == 0.0:
            return source.restore(content)
        styled = stylize_at_scale(lambda x: self._transfer(x, stats, strength, tile, used), content, style_scale)
        # strength is applied to the features already; this only keeps the photo's colours if asked.
        return source.restore(finish_styled(content, styled, 1.0, preserve_color))

    def _levels(self, count: int | None) -> list[str]:
        """The finest ``count`` levels (all for None); a clear ValueError for a bad count."""
        levels = self.net.levels
        if count is None:
            return list(levels)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= len(levels):
            raise ValueError(f"levels must be a whole number from 1 to {len(levels)} (this network's levels: "
                             f"{', '.join(levels)}), got {count!r}")
        return list(levels[-count:])

    def _transfer(self, x: torch.Tensor, stats: StyleStatistics, strength: float, tile: int | None,
                  levels: list[str]) -> torch.Tensor:
        """The multi-level transfer of x (1x3xHxW, CPU) through ``levels``, tiled when large."""
        tile = auto_tile(x, tile)
        if tile is None or max(x.shape[-2:]) <= tile:
            return self._run(x, stats=stats, strength=strength, levels=levels)[0]
        # Every tile uses the transforms of the whole photo (computed on a downscaled copy).
        _, maps = self._run(resize_max_side(x, PLAN_MAX_SIDE), stats=stats, strength=strength, levels=levels)
        # The margin covers the receptive field beyond the cross-faded band of each window.
        return apply_in_tiles(x, lambda window: self._run(window, maps=maps, levels=levels)[0],
                              lambda _, styled: styled, tile, align=self.net.total_stride,
                              margin=self.net.receptive_radius + TILE_BLEND, blend=TILE_BLEND)

    def _run(self, x: torch.Tensor, *, maps: Sequence[AffineMap] | None = None, stats: StyleStatistics | None = None,
             strength: float = 1.0, levels: list[str] | None = None) -> tuple[torch.Tensor, list[AffineMap]]:
        """The network on x (1x3xHxW, CPU) on the model's device. The photo is surrounded by
        BORDER reflected pixels (VGG16's zero padding would otherwise give its edges features
        no photo has, which the transform turns into bright frames), padded to a multiple of the
        stride (and at least MIN_SIDE), and cropped back."""
        height, width = x.shape[-2:]
        stride, border = self.net.total_stride, BORDER
        pad_h = max(MIN_SIDE, height + 2 * border + (-(height + 2 * border)) % stride) - height - border
        pad_w = max(MIN_SIDE, width + 2 * border + (-(width + 2 * border)) % stride) - width - border
        padded = _pad(x, border, pad_h, border, pad_w).to(self.device)
        with inference_context(self.device):
            out, used = self.net.transfer(padded, maps, stats.levels if stats else None, strength, levels)
        out = out[..., border:border + height, border:border + width]
        return check_finite_output(out.float()).cpu(), used

    @staticmethod
    def explain_mismatch(config: Any, found: Mapping[str, tuple[int, ...]]) -> str | None:
        """Name the config value (levels / decoder_width) that disagrees with the weights."""
        held = sorted({key.split(".")[1] for key in found if key.startswith("decoders.")})
        if held and held != sorted(config.levels):
            return f"levels={config.levels} in config.json but the weights hold decoders for {held}"
        first = found.get(f"decoders.{config.levels[0]}.0.weight")
        if first and len(first) == 4:
            return f"decoder_width={config.decoder_width} in config.json does not match the weights' widths"
        return None


def _pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Pad by reflection, repeatedly where the image is smaller than the margin (a 1x1 photo is
    replicated)."""
    while top or bottom or left or right:
        height, width = x.shape[-2:]
        if height < 2 or width < 2:
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        step = [min(v, size - 1) for v, size in ((top, height), (bottom, height), (left, width), (right, width))]
        x = F.pad(x, (step[2], step[3], step[0], step[1]), mode="reflect")
        top, bottom, left, right = (v - s for v, s in zip((top, bottom, left, right), step))
    return x


__all__ = ["ARCHITECTURES", "ArbitraryConfig", "ArbitraryNet", "ArbitraryStyle", "StyleStatistics"]
