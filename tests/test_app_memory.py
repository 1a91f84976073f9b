"""fst.app_backend.memory: the app hands glibc's free heap memory back to the system."""
from __future__ import annotations

import platform
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fst.app_backend import memory

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")

FRAGMENTED_HEAP = r"""
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from fst.app_backend.memory import trim_free_memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss_mb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
blocks = [libc.malloc(16384) for _ in range(16000)]   # 250 MB of small blocks on the heap
for address in blocks:
    ctypes.memset(address, 1, 16384)
for address in blocks[:-1]:
    libc.free(address)   # the last block pins the top of the heap: free() alone gives nothing back
before = rss_mb()
trimmed = trim_free_memory()
print(trimmed, before, rss_mb())
"""


def test_trimming_returns_the_free_heap_to_the_system():
    out = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP, str(REPO_ROOT)], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    trimmed, before, after = out[0] == "True", float(out[1]), float(out[2])
    assert trimmed and before > 200 and before - after > 150, (before, after)


def test_the_trimming_thread_runs_until_stopped(monkeypatch):
    calls = threading.Semaphore(0)
    monkeypatch.setattr(memory, "trim_free_memory", lambda: calls.release() or True)
    stop = memory.start_trimming(interval=0.01)
    try:
        assert all(calls.acquire(timeout=5) for _ in range(3))
    finally:
        stop.set()
