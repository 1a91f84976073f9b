"""What a model card and config.json say about a run: training sets and their terms, the options
as published (no local paths), the placeholder repo id, and a speed sentence."""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch


def jsonable(value: Any) -> Any:
    """``value`` with Paths and other objects turned into strings, recursively (for JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


DATA_TERMS = {
    "imagenet_sample": "ImageNet terms of access (non-commercial research/educational use)",
    "bsds500": "BSDS500: UC Berkeley, research and educational (non-commercial) use",
}


def _data_names(data: Path | Sequence[Path]) -> list[str]:
    folders = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    names = [part for folder in folders for part in folder.resolve().parts]   # e.g. .../bsds500/train
    return names + [p.name for folder in folders if folder.is_dir() for p in folder.iterdir() if p.is_dir()]


def data_terms(data: Path | Sequence[Path]) -> str:
    """The terms of use of known training sets found in ``data`` (for model cards)."""
    names = _data_names(data)
    found = [terms for key, terms in DATA_TERMS.items() if any(key in name for name in names)]
    return "; ".join(found) or "see the terms of the training photos' source"


#: Hub dataset ids of the known training sets: a card's ``datasets:`` names only real Hub datasets
#: (the ImageNet sample is drawn from ILSVRC-2012; BSDS500 has no canonical Hub dataset).
DATASET_IDS = {"imagenet_sample": "ILSVRC/imagenet-1k"}
#: Options that only make sense on the training machine: never written into a published folder.
LOCAL_OPTIONS = ("hub_token", "config", "output_dir", "resume_from_checkpoint")


def datasets_of(data: Path | Sequence[Path]) -> list[str]:
    """Hub dataset ids of the known training sets in ``data`` (the card's ``datasets`` field; may be empty)."""
    names = dict.fromkeys(_data_names(data))
    return list(dict.fromkeys(DATASET_IDS[name] for name in names if name in DATASET_IDS))


def public_name(path: str | Path) -> str:
    """How a local path appears in a published card or config: from a known training set's folder
    on (``bsds500/train``), else just its file or folder name; URLs are kept as they are."""
    text = str(path)
    if re.match(r"^https?://", text):
        return text
    parts = Path(text).parts
    start = next((i for i, part in enumerate(parts) if part in DATA_TERMS), len(parts) - 1)
    return "/".join(parts[start:]) if parts else text


def data_names(data: Path | Sequence[Path]) -> list[str]:
    """The training folders as published (see :func:`public_name`)."""
    return [public_name(d) for d in ([data] if isinstance(data, (str, Path)) else data)]


def public_options(args: argparse.Namespace) -> dict[str, Any]:
    """The training options as stored in config.json: JSON values, local paths reduced to their
    names (:func:`public_name`), and options that only matter on this machine left out."""
    def public(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [public(v) for v in value]
        if isinstance(value, Path) or (isinstance(value, str) and _is_local_path(value)):
            return public_name(value)
        return value

    return jsonable({key: public(value) for key, value in vars(args).items() if key not in LOCAL_OPTIONS})


def _is_local_path(text: str) -> bool:
    if re.match(r"^https?://", text):
        return False
    return text.startswith(("/", "./", "../", "~")) or Path(text).exists()


def placeholder_repo_id(folder: Path) -> str:
    """The repo id a card shows until the model is published with ``--hub_model_id``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(folder).name).strip("-.") or "model"
    return f"your-name/{name}"


def speed_line(run: Callable[[torch.Tensor], Any], note: str, size: int = 512) -> str:
    """Best of 3 timings of ``run`` on a random size x size image, as a model-card sentence."""
    image = torch.rand(1, 3, size, size)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        run(image)
        timings.append(time.perf_counter() - start)
    return (f"{min(timings) * 1000:.0f} ms per {size}x{size} image on {hardware_name()} "
            f"(torch {torch.__version__}, {note}).")


def hardware_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads > 1 else ''})"
