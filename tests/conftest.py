"""Test environment: isolated caches, a local Hub server, no analytics.

Environment variables are set at import time, before huggingface_hub or gradio
are imported by any test module, because both read them once on import.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = (REPO_ROOT.parent / "shared" / "data").resolve()
BAD_INPUTS = DATA_DIR / "bad_inputs"

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="fst-tests-"))
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf_home")
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["GRADIO_TEMP_DIR"] = str(_SESSION_TMP / "gradio")
os.environ.setdefault("FST_CACHE", str(Path.home() / ".cache" / "fst"))  # VGG weights are shared
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("HF_TOKEN", None)
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_server import HubServer  # noqa: E402  (after the environment is set)

_HUB = HubServer()
_HUB.start()
os.environ["HF_ENDPOINT"] = _HUB.url


def pytest_unconfigure(config: pytest.Config) -> None:
    _HUB.stop()
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def hub() -> HubServer:
    """The local Hub server that HF_ENDPOINT points at."""
    return _HUB


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"shared data not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def bad_inputs() -> Path:
    return BAD_INPUTS


@pytest.fixture(autouse=True)
def _no_pickle_exploit_ran():
    """Any test that touches the corpus must never run its pickle payload."""
    yield
    leaked = list(Path("/tmp").glob("PWNED_*"))
    assert not leaked, f"a pickle payload was executed: {leaked}"
