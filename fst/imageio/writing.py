"""Atomic image writes: readers never see half a file."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from PIL import Image


def atomic_save(image: Image.Image, path: Path, image_format: str, options: dict) -> None:
    """Encode into a temp file next to ``path`` then os.replace it (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(tmp, flags, 0o666)  # 0o666 & ~umask, like a normal open()
    try:
        with os.fdopen(descriptor, "wb") as file:
            image.save(file, format=image_format, **options)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
