"""Safe reading of model folders: safetensors only, bounded, validated, strict.

Nothing here unpickles, follows a path out of the model folder, or allocates
memory sized by untrusted numbers before they are checked.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Callable, Mapping

import torch
from safetensors.torch import load as load_safetensors_bytes

from .errors import ModelLoadError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PICKLE_NAMES = ("pytorch_model.bin", "model.bin", "model.pt", "model.pth", "model.ckpt", "pytorch_model.pt")
MAX_WEIGHTS_BYTES = 2 << 30   # 2 GiB: far above any network fst builds
MAX_HEADER_BYTES = 16 << 20   # safetensors caps its own header at 100 MB; ours are a few KB
ALLOWED_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
_DTYPE_NAMES = {"I8": "int8", "U8": "uint8", "I16": "int16", "I32": "int32", "I64": "int64",
                "F64": "float64", "BOOL": "bool", "F8_E4M3": "float8_e4m3", "F8_E5M2": "float8_e5m2"}

# Shape mismatch explainer: (config, {name: found shape}) -> a hint naming the config value.
MismatchHint = Callable[[object, Mapping[str, tuple[int, ...]]], "str | None"]


def model_folder_boundary(folder: Path) -> Path:
    """The folder that the files of model folder ``folder`` may resolve into.

    A plain folder: itself. A snapshot of the Hugging Face cache
    (``models--user--name/snapshots/<revision>/``, whose files are relative symlinks to
    ``../../blobs/<sha>``): the repo's cache folder ``models--user--name/``, so its blobs
    load while a symlink out of that folder is still refused.
    """
    real = folder.resolve()
    repo = real.parent.parent
    if real.parent.name == "snapshots" and repo.name.startswith("models--") and (repo / "blobs").is_dir():
        return repo
    return real


def contained_file(root: Path, name: str, *, allowed_root: Path | None = None) -> Path:
    """``root/name`` if it is a regular file whose real path stays inside ``allowed_root``.

    ``allowed_root`` defaults to ``root``; for the Hugging Face cache it is the repo's
    cache folder, because snapshot files are symlinks to ``../../blobs/<sha>``.
    """
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise ModelLoadError(f"invalid filename {name!r}: must be a plain file name inside the repository")
    candidate = root / name
    boundary = (allowed_root or root).resolve()
    resolved = candidate.resolve()
    if not resolved.is_relative_to(boundary):
        raise ModelLoadError(f"{name} resolves outside the model folder; refusing to read it")
    if not resolved.is_file():
        raise ModelLoadError(f"{name} is missing from {root}")
    return resolved


def refuse_pickle(root: Path) -> None:
    """Raise the pickle refusal if the folder only offers pickle checkpoints."""
    found = [name for name in PICKLE_NAMES if (root / name).exists()]
    raise ModelLoadError(
        f"no {WEIGHTS_NAME} in {root}"
        + (f"; pickle checkpoints ({', '.join(found)}) are not loaded for security reasons"
           " - convert to safetensors" if found else "; a model folder needs config.json and model.safetensors")
    )


def read_header(raw: bytes, name: str = WEIGHTS_NAME) -> dict[str, dict]:
    """Parse and bound-check a safetensors header (from the whole file's bytes)."""
    if len(raw) < 8:
        raise ModelLoadError(f"{name} is corrupt (file is only {len(raw)} bytes)")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > len(raw) - 8 or header_len > MAX_HEADER_BYTES:
        raise ModelLoadError(f"{name} is corrupt (header length exceeds file size); re-download or re-export it")
    try:
        header = json.loads(raw[8:8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ModelLoadError(f"{name} is corrupt (header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{name} is corrupt (header is not a JSON object)")
    header.pop("__metadata__", None)
    data_len = len(raw) - 8 - header_len
    for key, entry in header.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list) \
                or not isinstance(entry.get("data_offsets"), list) or len(entry["data_offsets"]) != 2:
            raise ModelLoadError(f"{name} is corrupt (bad header entry for {str(key)[:80]!r})")
        start, end = entry["data_offsets"]
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= data_len):
            raise ModelLoadError(f"{name} is corrupt (tensor {str(key)[:80]!r} lies outside the file)")
    return header


def check_tensors(
    header: Mapping[str, dict],
    expected: Mapping[str, torch.Size],
    *,
    config: object = None,
    hint: MismatchHint | None = None,
    name: str = WEIGHTS_NAME,
) -> None:
    """Strict check of names, dtypes and shapes against the network the config builds."""
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    wrong_shape = {k: tuple(header[k]["shape"]) for k in expected if k in header
                   and tuple(header[k]["shape"]) != tuple(expected[k])}
    if missing or unexpected or wrong_shape:
        found = {k: tuple(v["shape"]) for k, v in header.items()}
        lines = []
        explanation = hint(config, found) if hint else None
        if explanation:
            lines.append(explanation)
        if wrong_shape:
            lines.append("shape mismatch: " + "; ".join(
                f"{k}: expected {tuple(expected[k])}, found {shape}" for k, shape in list(wrong_shape.items())[:5])
                + (f" (and {len(wrong_shape) - 5} more)" if len(wrong_shape) > 5 else ""))
        if missing:
            lines.append("missing tensors: " + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
        if unexpected:
            lines.append("unexpected tensors: " + ", ".join(k[:80] for k in unexpected[:10])
                         + (" ..." if len(unexpected) > 10 else ""))
        raise ModelLoadError(f"{name} does not match config.json: " + "; ".join(lines)
                             + ". Re-export the model with save_pretrained().")
    for key, entry in header.items():
        dtype = entry.get("dtype")
        if dtype not in ALLOWED_DTYPES:
            shown = _DTYPE_NAMES.get(str(dtype), str(dtype)[:20])
            raise ModelLoadError(f"unsupported weight dtype {shown} for {key}; "
                                 "expected float32 (float16/bfloat16 may be cast)")
        size = math.prod(entry["shape"]) * ALLOWED_DTYPES[dtype].itemsize
        start, end = entry["data_offsets"]
        if end - start != size:
            raise ModelLoadError(f"{name} is corrupt (tensor {key} has {end - start} bytes, expected {size})")


def load_weights(
    path: Path,
    expected: Mapping[str, torch.Size],
    *,
    config: object = None,
    hint: MismatchHint | None = None,
) -> dict[str, torch.Tensor]:
    """Read, validate and return float32 tensors from a safetensors file."""
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise ModelLoadError(f"{WEIGHTS_NAME} is {size} bytes; refusing files over {MAX_WEIGHTS_BYTES} bytes")
    raw = path.read_bytes()
    header = read_header(raw)
    check_tensors(header, expected, config=config, hint=hint)
    try:
        tensors = load_safetensors_bytes(raw)
    except Exception as exc:  # safetensors raises its own error types
        raise ModelLoadError(f"{WEIGHTS_NAME} is corrupt: {exc}") from None
    for key, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise ModelLoadError(f"model weights contain NaN/Inf in {key}; the file is damaged or was "
                                 "saved from a diverged training run")
    return {key: tensor.float() for key, tensor in tensors.items()}
