"""Deleting old files from Gradio's temp folder, safely under load (gradio 6.x)."""
from __future__ import annotations

import logging
import os
import time

logger = logging.getLogger(__name__)


def delete_old_temp_files(blocks, age: int | None) -> None:
    """Gradio's ``delete_cache`` clean-up, iterating over copies of the file sets.

    gradio 6.31's own ``delete_files_created_by_app`` iterates the live sets while requests
    add files to them; the RuntimeError ("Set changed size during iteration") then ends its
    clean-up task for good, and uploads, results and webcam frames pile up on disk.
    """
    keep: set[str] = set()
    for block in list(blocks.blocks.values()):
        keep.update(getattr(block, "keep_in_cache", ()))
    now = time.time()
    for temp_set in list(blocks.temp_file_sets):
        for path in list(temp_set):
            if path in keep:
                continue
            try:
                if age is None or now - os.lstat(path).st_ctime > age:
                    os.remove(path)
                    temp_set.discard(path)
            except FileNotFoundError:
                temp_set.discard(path)
            except OSError as exc:
                logger.warning("could not delete the temp file %s: %s", path, exc)


def install() -> None:
    """Replace gradio's clean-up function with :func:`delete_old_temp_files`."""
    import gradio.route_utils

    gradio.route_utils.delete_files_created_by_app = delete_old_temp_files
