"""Handing the C allocator's free memory back to the system while the app serves.

Image requests allocate and free buffers of many sizes from several threads. glibc keeps freed
memory in its heaps for reuse, so the app's resident memory creeps up under load even though
nothing leaks. ``malloc_trim(0)`` returns the free pages; the app runs it every few seconds from
one background thread (:func:`start_trimming`), which costs a few milliseconds each time.
"""
from __future__ import annotations

import ctypes
import logging
import threading

logger = logging.getLogger(__name__)

TRIM_INTERVAL_S = 5.0


def trim_free_memory() -> bool:
    """Give glibc's free heap memory back to the system; False where the C library is not glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def start_trimming(interval: float = TRIM_INTERVAL_S) -> threading.Event | None:
    """Trim every ``interval`` seconds from a daemon thread; returns the event that stops it
    (None where trimming is not available)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        logger.info("malloc_trim is not available (not glibc): the allocator's free memory stays with the app")
        return None
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval):
            trim_free_memory()

    threading.Thread(target=run, name="fst-malloc-trim", daemon=True).start()
    return stop
