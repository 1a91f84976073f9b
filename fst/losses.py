"""Perceptual losses (Johnson et al. 2016): content, Gram-matrix style, total variation."""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import torch

DEFAULT_CONTENT_LAYER = "relu2_2"
DEFAULT_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@dataclasses.dataclass
class LossWeights:
    """Weights of the perceptual loss terms.

    The terms are scale-free (content error relative to the content features' energy,
    each Gram distance relative to the style Gram's norm, TV per pixel), so the same
    weights work for torchvision- and caffe-normalised VGG weights and every layer
    contributes comparably.
    """

    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 1.0
    content_layer: str = DEFAULT_CONTENT_LAYER
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS
    style_layer_weights: Sequence[float] | None = None

    def layer_weights(self) -> list[float]:
        if self.style_layer_weights is None:
            return [1.0] * len(self.style_layers)
        if len(self.style_layer_weights) != len(self.style_layers):
            raise ValueError("style_layer_weights needs one weight per style layer")
        return list(self.style_layer_weights)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of BxCxHxW features, normalised by C*H*W (Johnson et al.)."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w).float()
    return flat @ flat.transpose(1, 2) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss: MSE between feature maps relative to the target's energy."""
    return content_ratio(*content_sums(features, target))


def content_sums(features: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Squared error, squared target energy and value count: sums that add up over images."""
    target = target.float()
    return (features.float() - target).pow(2).sum(), target.pow(2).sum(), target.numel()


def content_ratio(error: torch.Tensor, energy: torch.Tensor, count: int) -> torch.Tensor:
    """:func:`content_loss` from (summed) :func:`content_sums`: MSE over the mean squared target (>= 1e-8)."""
    return error / energy.clamp_min(1e-8 * count)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layers: Sequence[str],
    layer_weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Sum over layers of the squared Frobenius distance between Gram matrices,
    each relative to the target Gram's squared norm (so layers weigh alike).

    ``target_grams[layer]`` is 1xCxC (one style image, broadcast over the batch)
    or BxCxC. Distances are averaged over the batch.
    """
    weights = layer_weights if layer_weights is not None else [1.0] * len(layers)
    total = features[layers[0]].new_zeros((), dtype=torch.float32)
    for layer, weight in zip(layers, weights):
        gram = gram_matrix(features[layer])
        target = target_grams[layer].to(gram.dtype)
        norm = target.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)
        total = total + weight * (((gram - target) ** 2).sum(dim=(1, 2)) / norm).mean()
    return total


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference between neighbouring pixels."""
    dh = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    dw = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    return dh + dw


def style_grams(vgg, style_image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Gram matrices of a style image (1x3xHxW in [0, 1]), computed once, without grads."""
    with torch.no_grad():
        feats = vgg(style_image, layers)
        return {layer: gram_matrix(feats[layer]).detach() for layer in layers}


@dataclasses.dataclass
class LossTerms:
    """The weighted loss terms of one evaluation and their sum."""

    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.content + self.style + self.tv

    def as_floats(self) -> dict[str, float]:
        return {"loss": self.total.item(), "content": self.content.item(),
                "style": self.style.item(), "tv": self.tv.item()}


class PerceptualLoss(torch.nn.Module):
    """Johnson et al.'s loss: weighted content + style + TV terms.

    ``style_image`` is one style image (1x3xHxW) or a sequence of them (a multi-style
    network): their Gram matrices are computed once, and ``forward``'s ``styles`` (B style
    indices) says which one each output image is compared with.
    """

    def __init__(self, vgg, style_image: torch.Tensor | Sequence[torch.Tensor], weights: LossWeights | None = None):
        super().__init__()
        self.vgg = vgg
        self.weights = weights or LossWeights()
        images = [style_image] if isinstance(style_image, torch.Tensor) else list(style_image)
        grams = [style_grams(vgg, image, self.weights.style_layers) for image in images]
        for layer in self.weights.style_layers:
            self.register_buffer(f"gram_{layer}", torch.cat([gram[layer] for gram in grams]), persistent=False)

    def target_grams(self, styles: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Each style layer's Gram targets: SxCxC for all styles, or the rows ``styles`` selects."""
        grams = {layer: getattr(self, f"gram_{layer}") for layer in self.weights.style_layers}
        return grams if styles is None else {layer: gram[styles] for layer, gram in grams.items()}

    def forward(self, output: torch.Tensor, content: torch.Tensor, styles: torch.Tensor | None = None, *,
                sum_over_processes: Callable[[torch.Tensor], torch.Tensor] | None = None) -> LossTerms:
        """The loss terms of a batch. With several processes (DDP), pass ``sum_over_processes`` (a sum of a
        tensor over the processes, e.g. ``lambda t: accelerator.reduce(t, "sum")``): the content term is
        then relative to the energy of the whole global batch, so that the gradients DDP averages equal
        those of one process on the global batch (the style and TV terms are means: they add up already)."""
        w = self.weights
        if output.device.type == "cpu" and len(output) > 1:
            # One image at a time through VGG on CPU: NNPACK's fast kernels take one image,
            # so a batch would be split and re-joined (copied) at every convolution.
            # The sums below make the terms equal to the batched ones.
            parts = [self._sums(output[i:i + 1], content[i:i + 1], None if styles is None else styles[i:i + 1])
                     for i in range(len(output))]
            error, energy, count, style = (sum(part[i] for part in parts) for i in range(4))
        else:
            error, energy, count, style = self._sums(output, content, styles)
        if sum_over_processes is not None:
            # The energy depends on the photos only (no gradient): its global sum is a constant, and
            # processes x (this process's error / global energy) averages to the global ratio.
            totals = sum_over_processes(
                torch.stack([energy.detach().float(), energy.new_tensor(float(count)), energy.new_tensor(1.0)]))
            energy, count, error = totals[0], int(totals[1].item()), error * totals[2]
        return LossTerms(content=w.content_weight * content_ratio(error, energy, count),
                         style=w.style_weight * style / len(output),
                         tv=w.tv_weight * total_variation(output))

    def _sums(self, output: torch.Tensor, content: torch.Tensor,
              styles: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
        """Summed over the batch: squared content-feature error, squared content-feature
        energy, the number of content-feature values, and the style distances."""
        w = self.weights
        layers = list(dict.fromkeys([w.content_layer, *w.style_layers]))
        out_feats = self.vgg(output, layers)
        with torch.no_grad():
            target = self.vgg(content, [w.content_layer])[w.content_layer]
        style = style_loss(out_feats, self.target_grams(styles), w.style_layers, w.layer_weights()) * len(output)
        return (*content_sums(out_feats[w.content_layer], target), style)
