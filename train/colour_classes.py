"""Training parts of the VGG16 colorizer (``--arch vgg16-color``): colour classes, cached features.

- The frozen VGG16 encoder dominates the cost, so each training photo is encoded once
  (a fixed centre crop; horizontal flips are applied to the cached features) and only
  the trained branches run in the loop: an epoch costs a fraction of one encoder pass.
- Targets are a*b* at 1/4 resolution, soft-encoded over their 5 nearest colour classes
  (Gaussian, sigma 5), and the cross-entropy is rebalanced by class rarity (Zhang et
  al. 2016: the smoothed empirical class distribution mixed with the uniform one,
  lambda 0.5), so rare saturated colours are not drowned by the common desaturated ones.
- After training, the annealed-mean temperature is chosen on held-out photos: the most
  faithful (PSNR) one among those that keep at least half the photos' colourfulness; when
  none does, the most colourful one within PSNR_TIE_DB of the most faithful.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fst import imageio, metrics
from fst.color import rgb_to_lab, split_lab
from fst.colorizer import Colorizer, normalize_lightness
from fst.errors import FstError
from fst.inference import from_uint8_array
from fst.vgg import load_vgg16

#: Output stride of the colour classes (relu3_3 level).
TARGET_STRIDE = 4
#: Soft encoding: neighbours and Gaussian width (a*b* units).
NEIGHBOURS, SIGMA = 5, 5.0
#: Rebalancing: weight of the uniform distribution in the mix.
REBALANCE_LAMBDA = 0.5
#: Candidate annealed-mean temperatures tried after training.
TEMPERATURES = (0.2, 0.3, 0.38, 0.5, 0.65, 0.8, 1.0)
#: PSNR differences below this (dB) count as ties, broken by colourfulness.
PSNR_TIE_DB = 0.05


def load_encoder_weights(model: Colorizer, path: Path | None) -> str:
    """Copy the prepared VGG16 weights (``fst prepare-vgg``) into the model's encoder; returns their source."""
    vgg = load_vgg16(path)
    if vgg.normalisation != model.config.encoder_normalisation:
        raise FstError(f"the VGG16 weights expect {vgg.normalisation!r} input normalisation but the model is "
                       f"configured for {model.config.encoder_normalisation!r}")
    model.net.encoder.load_state_dict(vgg.state_dict(), strict=True)
    return getattr(vgg, "source", "unknown")


class EncodedCrops(torch.utils.data.Dataset):
    """Centre crops of colour photos as (cached encoder features, a*b* target, class label).

    Features are computed on first access and kept in memory (fp16), so only the first
    epoch pays for the encoder. Each access flips the sample at random (per epoch and
    index, so a resumed run sees the same data).
    """

    def __init__(self, encode: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                 paths: Sequence[Path], labels: Sequence[int], size: int, seed: int = 0,
                 cache_file: Path | None = None):
        if size % 8:
            raise FstError(f"--image_size must be a multiple of 8 for this colorizer, got {size}")
        self.encode, self.paths, self.labels = encode, list(paths), list(labels)
        self.size, self.seed, self.epoch = size, seed, 0
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.cache_file = cache_file
        if cache_file is not None and cache_file.is_file():
            self._load_cache(cache_file)

    def _fingerprint(self) -> str:
        """What the cached features depend on: crop size and the photos (names and sizes)."""
        import hashlib

        digest = hashlib.sha256(str(self.size).encode())
        for path in self.paths:
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
        return digest.hexdigest()

    def _load_cache(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get("fingerprint") != self._fingerprint():
                return   # other photos or crop size: encode afresh
            for index in range(len(self.paths)):
                self.cache[index] = tuple(handle.get_tensor(f"{index}.{name}") for name in ("relu3_3", "relu4_3", "ab"))

    def save_cache(self) -> None:
        """Write the encoded features to ``cache_file`` (safetensors), so a rerun skips the encoder."""
        from safetensors.torch import save_file

        if self.cache_file is None or len(self.cache) != len(self.paths):
            return
        tensors = {f"{index}.{name}": tensor.contiguous() for index, parts in self.cache.items()
                   for name, tensor in zip(("relu3_3", "relu4_3", "ab"), parts)}
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.cache_file.with_suffix(".partial")
        save_file(tensors, str(partial), metadata={"fingerprint": self._fingerprint()})
        partial.replace(self.cache_file)

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def encoded(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(relu3_3, relu4_3, a*b* target) of photo ``index``, unflipped, fp16 (computed once)."""
        if index not in self.cache:
            rgb = from_uint8_array(np.asarray(imageio.centre_square(imageio.read_image(self.paths[index]), self.size)))
            lightness, ab = split_lab(rgb_to_lab(rgb))
            relu3_3, relu4_3 = self.encode(normalize_lightness(lightness))
            target = F.avg_pool2d(ab, TARGET_STRIDE)
            self.cache[index] = (relu3_3[0].half(), relu4_3[0].half(), target[0].half())
        return self.cache[index]

    def __getitem__(self, index: int) -> dict[str, Any]:
        relu3_3, relu4_3, target = self.encoded(index)
        if np.random.default_rng([self.seed, self.epoch, index]).random() < 0.5:
            relu3_3, relu4_3, target = relu3_3.flip(-1), relu4_3.flip(-1), target.flip(-1)
        return {"relu3_3": relu3_3.float(), "relu4_3": relu4_3.float(), "ab": target.float(),
                "label": self.labels[index], "index": index}


def class_weights(ab_samples: torch.Tensor, centres: torch.Tensor,
                  uniform_share: float = REBALANCE_LAMBDA) -> torch.Tensor:
    """Rebalancing weight per colour class from a*b* samples (Nx2): rare classes weigh more,
    normalised so the expected weight under the data is 1. ``uniform_share`` is the weight of
    the uniform distribution in the mix: 1 turns rebalancing off (every class weighs 1)."""
    nearest = torch.cdist(ab_samples.float(), centres).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=len(centres)).double()
    empirical = counts / counts.sum()
    distance = torch.cdist(centres.double(), centres.double())
    smoothed = (torch.exp(-distance.pow(2) / (2 * SIGMA ** 2)) @ empirical)
    smoothed = smoothed / smoothed.sum()
    weights = 1.0 / ((1 - uniform_share) * smoothed + uniform_share / len(centres))
    weights = weights / (smoothed * weights).sum()
    return weights.float()


def sample_ab(dataset: EncodedCrops, count: int = 200_000, *, main_process: bool = True) -> torch.Tensor:
    """a*b* targets of the cached crops (every pixel of every crop, subsampled to ``count``).
    Only the ``main_process`` writes the feature cache (several processes would write the same file)."""
    from tqdm.auto import tqdm

    encoded = (dataset.encoded(i) for i in tqdm(range(len(dataset)), desc="encoding photos", unit="photo",
                                                 disable=not main_process))
    ab = torch.cat([target.float().reshape(2, -1).T for _, _, target in encoded])
    if main_process:
        dataset.save_cache()
    if len(ab) > count:
        ab = ab[torch.randperm(len(ab), generator=torch.Generator().manual_seed(0))[:count]]
    return ab


def soft_targets(ab: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(BxQxHxW soft class targets, BxHxW index of the nearest class) for a*b* (Bx2xHxW)."""
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    distance = torch.cdist(flat, centres)
    near_distance, near_index = distance.topk(NEIGHBOURS, dim=1, largest=False)
    weights = torch.softmax(-near_distance.pow(2) / (2 * SIGMA ** 2), dim=1)
    targets = torch.zeros_like(distance).scatter_(1, near_index, weights)
    b, _, h, w = ab.shape
    return targets.reshape(b, h, w, -1).permute(0, 3, 1, 2), near_index[:, 0].reshape(b, h, w)


class HeadTrainer(nn.Module):
    """The trained branches of a VGG16 colorizer as one module (what the accelerator wraps)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, relu3_3: torch.Tensor, relu4_3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.net.head(relu3_3, relu4_3, relu4_3)


def class_colour_loss(prepared: nn.Module, batch: dict[str, Any], centres: torch.Tensor, weights: torch.Tensor,
                      classification_weight: float, ignore_index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Rebalanced soft cross-entropy over colour classes (+ the auxiliary classification loss)."""
    logits, class_logits = prepared(batch["relu3_3"], batch["relu4_3"])
    targets, nearest = soft_targets(batch["ab"], centres)
    pixel_loss = -(targets * torch.log_softmax(logits.float(), dim=1)).sum(dim=1)
    colour = (pixel_loss * weights[nearest]).mean()
    classification = torch.zeros((), device=logits.device)
    labels = batch["label"]
    if class_logits is not None and classification_weight > 0:
        labelled = (labels != ignore_index).sum().clamp(min=1)
        classification = F.cross_entropy(class_logits.float(), labels, ignore_index=ignore_index,
                                          reduction="sum") / labelled
    total = colour + classification_weight * classification
    return total, {"loss": total, "colour_ce": colour, "classification": classification}


def choose_temperature(model: Colorizer, images: Sequence[torch.Tensor]) -> tuple[float, list[dict[str, float]]]:
    """Set the model's annealed-mean temperature by :func:`pick_temperature` on ``images``;
    returns it and the table tried."""
    truth = float(np.mean([metrics.colorfulness(image).item() for image in images]))
    rows = []
    for temperature in TEMPERATURES:
        model.config.temperature = temperature
        outputs = [model.colorize(image).float() for image in images]
        rows.append({"temperature": temperature,
                     "psnr": float(np.mean([metrics.psnr(o, i).item() for o, i in zip(outputs, images)])),
                     "colourfulness": float(np.mean([metrics.colorfulness(o).item() for o in outputs]))})
    model.config.temperature = pick_temperature(rows, truth)
    return model.config.temperature, rows


def pick_temperature(rows: Sequence[dict[str, float]], truth_colourfulness: float) -> float:
    """The best-PSNR temperature among those keeping >= 50% of the photos' colourfulness; when
    none does, the most colourful one within :data:`PSNR_TIE_DB` of the best PSNR."""
    vivid = [row for row in rows if row["colourfulness"] >= 0.5 * truth_colourfulness]
    if vivid:
        return max(vivid, key=lambda row: row["psnr"])["temperature"]
    best = max(row["psnr"] for row in rows)
    ties = [row for row in rows if row["psnr"] >= best - PSNR_TIE_DB]
    return max(ties, key=lambda row: row["colourfulness"])["temperature"]


def temperature_table(rows: Sequence[dict[str, float]], chosen: float) -> str:
    """Markdown table of :func:`choose_temperature`'s trials."""
    lines = ["| temperature | PSNR (dB) | colourfulness |", "|---|---|---|"]
    for row in rows:
        mark = " (chosen)" if math.isclose(row["temperature"], chosen) else ""
        lines.append(f"| {row['temperature']}{mark} | {row['psnr']:.2f} | {row['colourfulness']:.1f} |")
    return "\n".join(lines)
