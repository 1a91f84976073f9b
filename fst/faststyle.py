"""FastStyle: a trained style network you can load, save, publish and call."""
from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn

from . import addon
from .brush import check_style_scale, stylize_at_scale
from .fastpath import TRAINING_PATH, FastPath, fast_inference
from .hub import SafeHubMixin, resolve_device
from .inference import (ImageInput, as_input, check_finite_output, check_optional_size, check_unit_interval,
                        inference_context, pad_to_min_side, resize_max_side)
from .multistyle import StyleChoice, style_mix, style_weights
from .tiling import auto_tile, tiled_apply
from .transformer import TransformerConfig, TransformerNet, norm_parameter_names

if TYPE_CHECKING:  # pragma: no cover
    from .mixing import BoundStyle

MIN_SIDE = 16                     # smaller inputs are padded up to this and cropped back
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

    A multi-style network (``model.style_names``) takes a style choice:
    ``model(photo, style="the_scream")``, or a blend in one pass:
    ``model(photo, style={"starry_night": 0.5, "the_scream": 0.5})`` (see :mod:`fst.multistyle`).

    Construct with a :class:`TransformerConfig` or its fields as keyword arguments.
    """

    config_class = TransformerConfig
    network_class = TransformerNet
    #: CPU inference rewrites (``fst.fastpath.FastPath``); None runs the plain forward.
    fast_path = FastPath()
    #: The differentiable CPU rewrites used by ``forward`` with autograd on (training).
    training_path = TRAINING_PATH

    def __init__(self, config: TransformerConfig | Mapping[str, Any] | None = None, **fields: Any):
        super().__init__()
        self._setup(config, fields)   # tensors keep pytorch/examples' names (no "net." prefix)

    @property
    def style_names(self) -> list[str]:
        """The styles of a multi-style network (empty for a single-style one)."""
        return list(self.config.style_names or [])

    def style_weights(self, style: StyleChoice | torch.Tensor) -> torch.Tensor | None:
        """One weight per style for ``style`` (a name, a blend, or a tensor: B style indices, or
        S / BxS weights); None for a single-style network. Raises StyleError for a bad choice."""
        if isinstance(style, torch.Tensor) and self.style_names:
            count = len(self.style_names)
            if not style.is_floating_point():
                return torch.nn.functional.one_hot(style.long(), count).float()
            if style.shape[-1] != count:
                raise ValueError(f"style weights must have {count} columns (one per style), got {tuple(style.shape)}")
            return style.float()
        return style_weights(self.style_names, style)

    def with_style(self, style: StyleChoice) -> "BoundStyle":
        """This multi-style network with ``style`` chosen (a name or a blend, checked now): its
        ``stylize`` and calls use that style, e.g. wherever a single-style network is expected."""
        from .mixing import BoundStyle

        return BoundStyle(self, style)

    def forward(self, x: torch.Tensor, style: StyleChoice | torch.Tensor = None) -> torch.Tensor:
        """Bx3xHxW in [0, 1] -> stylized Bx3xHxW in [0, 1] (differentiable; for training).

        ``style`` (multi-style networks): a style choice for the batch, or a tensor of B style
        indices (one style per image) or of weights. On CPU the rewrites of ``training_path``
        (with autograd) or ``fast_path`` (without) apply.
        """
        options = self.training_path if torch.is_grad_enabled() else self.fast_path
        with fast_inference(options if x.device.type == "cpu" else None), style_mix(self.style_weights(style)):
            return self.net(x)

    def __call__(self, image: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """The same rule for both model classes: in training mode a tensor goes through
        :meth:`forward` (the raw network, for training loops and DDP); otherwise ``model(x)``
        is :meth:`stylize`: one image in, the same kind, dtype and layout out."""
        if self.training and isinstance(image, torch.Tensor):
            return super().__call__(image, **kwargs)
        return self.stylize(image, **kwargs)

    @torch.inference_mode()
    def stylize(
        self,
        image: Any,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        tile: int | None = None,
        style_scale: float = 1.0,
        detail: float = 0.0,
        style: StyleChoice = None,
    ) -> Any:
        """Stylize one image; returns the same kind, dtype and layout (see ``fst.inference``).

        Args:
            strength: 0 returns the content, 1 the full style; in between blends them.
            preserve_color: keep the content's colours (transfer luminance only, in Lab).
            max_side: downscale so the longer side is at most this (faster); the result
                has the downscaled size.
            tile: tile size for bounded memory; images above 4 Mpx are tiled automatically.
            style_scale: brush size: the network runs at the image's size divided by this and
                the result is upsampled, so 2 paints strokes twice as large (1: the network's own).
            detail: with ``style_scale`` > 1, how much of the photo's fine luminance detail
                (lost by the downscale) is added back, 0..1.
            style: for a multi-style network, a style name (default: the first style) or a
                blend ``{name: weight}`` / ``"name:weight,name:weight"``, run in one pass.
        """
        weights = self.style_weights(style)
        request = StyleRequest.prepare(image, strength, preserve_color, max_side, tile, style_scale)
        detail = check_unit_interval("detail", detail)
        source, content = request.source, request.content
        if request.strength == 0.0:
            return source.restore(content)
        with style_mix(weights):
            return source.restore(self._stylize(request, preserve_color, detail).cpu())

    def _stylize(self, request: "StyleRequest", preserve_color: bool, detail: float) -> torch.Tensor:
        content = request.content

        def finish(content_part: torch.Tensor, styled: torch.Tensor) -> torch.Tensor:
            return finish_styled(content_part.to(styled.device), styled.float(), request.strength, preserve_color)

        if request.style_scale != 1.0:
            styled = stylize_at_scale(lambda x: self._run_maybe_tiled(x, request.tile), content,
                                      request.style_scale, detail)
            return finish(content, styled)
        if request.tiled:
            return tiled_apply(self.net, content, self._run, finish, request.tile)
        return finish(content, self._run(content))

    def _run_maybe_tiled(self, x: torch.Tensor, tile: int | None) -> torch.Tensor:
        """The network on x (1x3xHxW, CPU), tiled when x is larger than ``tile`` or 4 Mpx."""
        tile = auto_tile(x, tile)
        if tile is not None and max(x.shape[-2:]) > tile:
            return tiled_apply(self.net, x, self._run, lambda _, styled: styled.float().cpu(), tile)
        return self._run(x).cpu()

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
        return check_finite_output(out[..., :height, :width].float())

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
        norm = found.get("in1.weight")
        rows = norm[0] if norm and len(norm) == 2 else None
        if config.style_names and rows != len(config.style_names):
            held = f"{rows} style rows" if rows else "one style (a single-style network)"
            hints.append(f"style_names lists {len(config.style_names)} styles in config.json but the weights "
                         f"hold {held}")
        elif not config.style_names and rows:
            hints.append(f"the weights hold {rows} styles (a multi-style network) but config.json has no style_names")
        return "; ".join(hints) or None

    @classmethod
    def base_tensors(cls, config: TransformerConfig, folder: Any,
                     options: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """An add-on's convolutions, from its base network (see :mod:`fst.addon`)."""
        return addon.base_tensors(cls, config, folder, options) if config.base else {}

    def tensors_to_save(self) -> dict[str, torch.Tensor]:
        """The whole network; for an add-on (``config.base``) only its norm rows."""
        tensors = self.state_dict()
        if not self.config.base:
            return tensors
        return {name: tensors[name] for name in norm_parameter_names(self.net)}

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
    style_scale: float = 1.0

    @classmethod
    def prepare(cls, image: Any, strength: float, preserve_color: bool, max_side: int | None,
                tile: int | None, style_scale: float = 1.0) -> "StyleRequest":
        strength = check_unit_interval("strength", strength)
        style_scale = check_style_scale(style_scale)
        max_side = check_optional_size("max_side", max_side, MIN_SIDE)
        tile = check_optional_size("tile", tile, 64)
        source = as_input(image)
        content = resize_max_side(source.tensor, max_side)
        tile = auto_tile(content, tile)
        return cls(source, content, strength, tile, style_scale)

    @property
    def tiled(self) -> bool:
        return self.tile is not None and max(self.content.shape[-2:]) > self.tile


def finish_styled(content: torch.Tensor, styled: torch.Tensor, strength: float, preserve_color: bool) -> torch.Tensor:
    """The last step of a stylization, for one image or tile: ``styled`` (a network's output for
    ``content``, both 1x3xHxW in [0, 1] on one device) with the content's colours when
    ``preserve_color``, blended with the content by ``strength`` (1: the network's output), clamped
    to [0, 1]. FastStyle and the ONNX backend both finish this way."""
    if preserve_color:
        from .color import luminance_transfer

        styled = luminance_transfer(content, styled)
    if strength < 1.0:
        styled = torch.lerp(content, styled, strength)
    return styled.clamp_(0, 1)


__all__ = ["FastStyle", "resolve_device"]
