"""Training data: image discovery, the random-crop dataset, style and validation images, sample grids."""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fst import imageio
from fst.errors import DataError, FstError
from fst.inference import from_uint8_array, to_uint8_array

logger = logging.getLogger("fst.train")

IMAGE_EXTENSIONS = imageio.IMAGE_EXTENSIONS


def printable(path: Path | str) -> str:
    """A path safe to print: control characters escaped."""
    return str(path).encode("unicode_escape").decode("ascii") if re.search(r"[\x00-\x1f\x7f]", str(path)) \
        else str(path)


def discover_images(root: Path | Sequence[Path], *, check: bool = True) -> list[Path]:
    """All readable images under ``root`` (a folder or several; recursively, sorted);
    unreadable ones are skipped with a warning naming each. Raises DataError when none is found."""
    if not isinstance(root, (str, Path)):
        return [path for folder in root for path in discover_images(folder, check=check)]
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data {printable(root)} is not a folder")
    candidates, skipped = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append((path, "not an image file"))
        else:
            candidates.append(path)
    found = []
    for path in candidates:
        try:
            if check:
                imageio.read_image(path)
            found.append(path)
        except FstError as exc:
            skipped.append((path, str(exc)))
            logger.warning("skipping %s: %s", printable(path), exc)
    if not found:
        raise DataError(f"no training images found in {printable(root)} (supported: "
                        f"{' '.join(IMAGE_EXTENSIONS)}); {len(skipped)} other file(s) skipped")
    logger.info("found %d training images in %s (%d files skipped)", len(found), printable(root), len(skipped))
    return found


class ImageFolder(Dataset):
    """Random-resized-crop + flip samples of images; deterministic per (seed, epoch, index)
    so a resumed run sees exactly the data an uninterrupted one would."""

    def __init__(self, paths: Sequence[Path], size: int, seed: int = 0, scale: tuple[float, float] = (0.5, 1.0)):
        self.paths = list(paths)
        self.size = size
        self.seed = seed
        self.scale = scale
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def load(self, index: int) -> Image.Image:
        """The image at ``index``; a file that became unreadable is replaced by the next one."""
        for offset in range(len(self.paths)):
            path = self.paths[(index + offset) % len(self.paths)]
            try:
                return imageio.read_image(path)
            except FstError as exc:
                logger.warning("skipping unreadable %s: %s", printable(path), exc)
        raise DataError("none of the training images can be read any more")

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image = self.load(index)
        return {"image": random_resized_crop(image, self.size, rng, self.scale), "index": index}


def random_resized_crop(image: Image.Image, size: int, rng: np.random.Generator,
                        scale: tuple[float, float] = (0.5, 1.0)) -> torch.Tensor:
    """A random square crop covering ``scale`` of the shorter side, resized to ``size``,
    randomly flipped; works for any image size (a 1x1 image is simply upscaled)."""
    width, height = image.size
    short = min(width, height)
    side = max(1, int(round(short * math.sqrt(rng.uniform(*scale)))))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    tensor = from_uint8_array(np.asarray(crop))[0]
    return tensor.flip(-1) if rng.random() < 0.5 else tensor


def load_style_image(source: str, size: int | None) -> Image.Image:
    """A style image from a path or an http(s) URL, its longer side resized to ``size``."""
    if re.match(r"^https?://", source):
        data = _download_bytes(source, limit=50 << 20)
        image = imageio.read_image(data)
    else:
        image = imageio.read_image(Path(source))
    return imageio.fit_longer_side(image, size) if size else image


def _download_bytes(url: str, limit: int) -> bytes:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - user-given URL by design
            data = response.read(limit + 1)
    except OSError as exc:
        raise DataError(f"cannot download the style image {url}: {exc}") from None
    if len(data) > limit:
        raise DataError(f"style image at {url} is larger than {limit >> 20} MB")
    return data


def validation_images(paths: Sequence[Path] | None, default_dir: Path | None, count: int = 4,
                      size: int = 256) -> list[torch.Tensor]:
    """Validation images (1x3xHxW, shorter side ``size``) from files or folders."""
    files: list[Path] = []
    for path in (paths or ([default_dir] if default_dir else [])):
        files += discover_images(path, check=False)[:count] if Path(path).is_dir() else [Path(path)]
    return [from_uint8_array(np.asarray(imageio.centre_square(imageio.read_image(path), size)))
            for path in files[:count]]


def save_grid(rows: Sequence[Sequence[torch.Tensor]], path: Path) -> Path:
    """Save rows of equally sized 1x3xHxW images as one JPEG/PNG grid (atomically)."""
    grid = torch.cat([torch.cat([img.float().cpu() for img in row], dim=3) for row in rows], dim=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    return imageio.save_image(to_uint8_array(grid), path, quality=85)
