"""FastStyle: a trained style network you can load, save, publish and call."""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

import torch
from torch import nn

from .hub import SafeHubMixin, resolve_device
from .inference import (ImageInput, as_input, check_optional_size, check_unit_interval, inference_context,
                        pad_to_min_side, resize_max_side)
from .tiling import tiled_apply
from .transformer import TRAINING_PATH, FastPath, TransformerConfig, TransformerNet, fast_inference

MIN_SIDE = 16                     # smaller inputs are padded up to this and cropped back
AUTO_TILE_PIXELS = 2048 * 2048    # larger inputs are tiled automatically (bounded memory)
DEFAULT_TILE = 768


class FastStyle(
    SafeHubMixin,
    nn.Module,
    library_name="fst",
    tags=["fast-style-transfer", "style-transfer", "image-to-image"],
    repo_url="https://huggingface.co/docs/hub/model-cards",
):
    """A feed-forward style-transfer network (Johnson et al. 2016).

    >>> model = FastStyle.from_pretrained("models/starry_night")   # or "user/vangogh"
    >>> styled = model(Image.open("photo.jpg"))                     # PIL in, PIL out

    Construct with a :class:`TransformerConfig` or its fields as keyword arguments.
    """

    config_class = TransformerConfig
    network_class = TransformerNet
    #: CPU inference rewrites (``fst.transformer.FastPath``); None runs the plain forward.
    fast_path = FastPath()
    #: The differentiable CPU rewrites used by ``forward`` with autograd on (training).
    training_path = TRAINING_PATH

    def __init__(self, config: TransformerConfig | Mapping[str, Any] | None = None, **fields: Any):
        super().__init__()
        self._setup(config, fields)   # tensors keep pytorch/examples' names (no "net." prefix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW in [0, 1] -> stylized Bx3xHxW in [0, 1] (differentiable; for training).

        On CPU the rewrites of ``training_path`` (with autograd) or ``fast_path`` (without) apply.
        """
        options = self.training_path if torch.is_grad_enabled() else self.fast_path
        with fast_inference(options if x.device.type == "cpu" else None):
            return self.net(x)

    def __call__(self, image: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """In training mode (or for batches) tensors go through ``forward``; otherwise the
        image is stylized and returned as the same kind (see :meth:`stylize`)."""
        if isinstance(image, torch.Tensor) and image.dim() == 4 and (self.training or image.shape[0] > 1):
            return super().__call__(image)
        return self.stylize(image, **kwargs)

    @torch.inference_mode()
    def stylize(
        self,
        image: Any,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        tile: int | None = None,
    ) -> Any:
        """Stylize one image; returns the same kind (PIL, HxWx3 uint8 array, or tensor).

        Args:
            strength: 0 returns the content, 1 the full style; in between blends them.
            preserve_color: keep the content's colours (transfer luminance only, in Lab).
            max_side: downscale so the longer side is at most this (faster); the result
                has the downscaled size.
            tile: tile size for bounded memory; images above 4 Mpx are tiled automatically.
        """
        request = StyleRequest.prepare(image, strength, preserve_color, max_side, tile)
        source, content = request.source, request.content
        if request.strength == 0.0:
            return source.restore(content)

        def finish(content_part: torch.Tensor, styled: torch.Tensor) -> torch.Tensor:
            return _finish(content_part.to(styled.device), styled.float(), request.strength, preserve_color)

        if request.tiled:
            result = tiled_apply(self.net, content, self._run, finish, request.tile)
        else:
            result = finish(content, self._run(content))
        return source.restore(result.cpu())

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The network on x (1x3xHxW, CPU), on the model's device, any size >= 1x1."""
        device = self.device
        padded, (height, width) = pad_to_min_side(x, MIN_SIDE)
        padded = padded.to(device)
        if device.type == "cuda":
            padded = padded.contiguous(memory_format=torch.channels_last)
        # On CPU: exact rewrites (sub-pixel upsampling, Winograd convs; see BENCHMARKS.md).
        with inference_context(device), fast_inference(None if device.type == "cuda" else self.fast_path):
            out = self.net(padded)
        out = out[..., :height, :width].float()
        if not torch.isfinite(out.sum()):  # sigmoid output: only NaN can appear, and a sum keeps it
            raise RuntimeError("model produced non-finite output; the weights may be damaged")
        return out

    @staticmethod
    def explain_mismatch(config: Any, found: Mapping[str, tuple[int, ...]]) -> str | None:
        """Name the config value (num_res_blocks / channels) that disagrees with the weights."""
        hints = []
        blocks = {int(m.group(1)) for k in found if (m := re.match(r"res(\d+)\.", k))}
        if blocks and len(blocks) != config.num_res_blocks:
            hints.append(f"num_res_blocks={config.num_res_blocks} in config.json but weights contain "
                         f"{len(blocks)} residual blocks")
        conv1 = found.get("conv1.conv2d.weight")
        if conv1 and len(conv1) == 4 and conv1[0] != config.channels:
            hints.append(f"channels={config.channels} in config.json but weights were built for channels={conv1[0]}")
        return "; ".join(hints) or None

    def to(self, *args: Any, **kwargs: Any) -> "FastStyle":  # noqa: D102 - channels_last on CUDA
        model = super().to(*args, **kwargs)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        return model


@dataclasses.dataclass
class StyleRequest:
    """A validated ``stylize`` call: the input, its working copy and how to run it."""

    source: ImageInput
    content: torch.Tensor      # 1x3xHxW in [0, 1], downscaled to max_side
    strength: float
    tile: int | None

    @classmethod
    def prepare(cls, image: Any, strength: float, preserve_color: bool, max_side: int | None,
                tile: int | None) -> "StyleRequest":
        strength = check_unit_interval("strength", strength)
        max_side = check_optional_size("max_side", max_side, MIN_SIDE)
        tile = check_optional_size("tile", tile, 64)
        source = as_input(image)
        content = resize_max_side(source.tensor, max_side)
        height, width = content.shape[-2:]
        if tile is None and height * width > AUTO_TILE_PIXELS:
            tile = DEFAULT_TILE
        return cls(source, content, strength, tile)

    @property
    def tiled(self) -> bool:
        return self.tile is not None and max(self.content.shape[-2:]) > self.tile


def _finish(content: torch.Tensor, styled: torch.Tensor, strength: float, preserve_color: bool) -> torch.Tensor:
    """Apply colour preservation and the strength blend to one image or tile."""
    if preserve_color:
        from .color import luminance_transfer

        styled = luminance_transfer(content, styled)
    if strength < 1.0:
        styled = torch.lerp(content, styled, strength)
    return styled.clamp_(0, 1)


__all__ = ["FastStyle", "resolve_device"]
