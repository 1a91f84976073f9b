"""Shared by the app tests: a tiny models folder, a tagged Hub repo, and the app in a subprocess.

The real default networks are still training, so the app tests bring their own:
random-weight networks (a few KB each) laid out like ``models/`` with a catalog.json.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:
    from fst import FastStyle

REPO_ROOT = Path(__file__).resolve().parents[1]
STYLES_DIR = REPO_ROOT.parent / "shared" / "data" / "styles"
HUB_STYLE_ID = "fst-tests/tiny-hub-style"

# (name, display name, painting in shared/data/styles)
TINY_STYLES = (
    ("starry_night", "The Starry Night (Vincent van Gogh)", "starry_night.jpg"),
    ("great_wave", "The Great Wave off Kanagawa (Hokusai)", "great_wave.jpg"),
)


def tiny_style(seed: int, **overrides) -> FastStyle:
    """A random-weight FastStyle small enough for CPU tests (channels=4, one residual block)."""
    from fst import FastStyle

    torch.manual_seed(seed)
    model = FastStyle(channels=4, num_res_blocks=1, **overrides)
    with torch.no_grad():   # random instance-norm gains make the output clearly differ from the input
        for name, param in model.net.named_parameters():
            if name.endswith("weight") and param.dim() == 1:
                param.normal_(1.0, 0.5)
    return model


def write_style_image(painting: str, path: Path, side: int = 160) -> None:
    """A small copy of a public-domain painting (or a gradient when the data is absent)."""
    source = STYLES_DIR / painting
    if source.is_file():
        image = Image.open(source).convert("RGB")
        image.thumbnail((side, side))
    else:
        ramp = np.linspace(0, 255, side, dtype=np.uint8)
        image = Image.fromarray(np.stack([np.tile(ramp, (side, 1))] * 3, axis=-1))
    image.save(path, quality=90)


def make_models_dir(root: Path, *, colorizer: bool = True) -> Path:
    """A models folder like ``models/``: two styles (one with a webcam network), optionally a
    colorizer, and a tiny any-painting network (random decoders: it runs, it does not paint well)."""
    from fst.arbitrary import ArbitraryStyle
    from fst.colorizer import Colorizer

    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for seed, (name, display, painting) in enumerate(TINY_STYLES):
        tiny_style(seed, style_name=display).save_pretrained(root / name)
        write_style_image(painting, root / name / "style.jpg")
        entries.append(dict(name=name, display_name=display, kind="style", folder=name,
                            hub_id=f"fast-style/{name.replace('_', '-')}", style_image="style.jpg"))
    # The first style gets a webcam network (its "webcam" field names it).
    webcam = f"{TINY_STYLES[0][0]}_rt"
    tiny_style(10, outer_kernel_size=5).save_pretrained(root / webcam)
    entries[0]["webcam"] = webcam
    entries.append(dict(name=webcam, display_name=f"{TINY_STYLES[0][1]}, webcam network", kind="style",
                        folder=webcam, hub_id=f"fast-style/{webcam.replace('_', '-')}"))
    if colorizer:
        torch.manual_seed(0)
        Colorizer(width=0.05, num_classes=0, max_side=64).save_pretrained(root / "colorizer")
        entries.append(dict(name="colorizer", display_name="Colorizer (tiny test network)", kind="colorizer",
                            folder="colorizer", hub_id="fast-style/colorizer"))
    torch.manual_seed(0)
    ArbitraryStyle(levels=["relu2_1", "relu1_1"], decoder_width=0.125, style_size=64).save_pretrained(root / "arbitrary")
    entries.append(dict(name="arbitrary", display_name="Any painting (tiny test network)", kind="arbitrary",
                        folder="arbitrary", hub_id="fast-style/arbitrary"))
    (root / "catalog.json").write_text(json.dumps({"models": entries}, indent=2), encoding="utf-8")
    return root


def seed_hub_style(hub, folder: Path, repo_id: str = HUB_STYLE_ID) -> str:
    """Publish a tiny style network tagged ``fast-style-transfer`` on the local Hub server."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny_style(20, style_name="Hub test style").save_pretrained(folder)
    write_style_image("the_scream.jpg", folder / "style.jpg")
    (folder / "README.md").write_text(
        "---\nlicense: mit\nlibrary_name: fst\ntags:\n- fast-style-transfer\n- style-transfer\n---\n# test\n",
        encoding="utf-8")
    hub.seed_repo(repo_id, folder)
    return repo_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppProcess:
    """``python app.py`` on 127.0.0.1 and a free port, with its log in a file."""

    def __init__(self, models_dir: Path, workdir: Path, env: dict[str, str] | None = None,
                 args: Sequence[str] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = workdir / f"app-{self.port}.log"
        full_env = {**os.environ, "GRADIO_TEMP_DIR": str(workdir / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False",
                    "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("FST_MODELS_DIR", None)   # --models-dir must be enough
        self._log = open(self.log_path, "wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(self.port),
             "--models-dir", str(models_dir), *args],
            cwd=REPO_ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> "AppProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app not ready after {timeout:.0f} s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 10) -> dict[str, Any]:
        """SIGTERM, then SIGKILL after ``timeout`` s; returns how the app ended."""
        how = "already exited"
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
                how = "terminated (SIGTERM)"
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                how = f"killed after {timeout:.0f} s"
        self._log.close()
        return {"how": how, "returncode": self.process.returncode}


_SHARED: AppProcess | None = None


def shared_app(hub, tmp_root: Path) -> AppProcess:
    """One app server for the whole session (API and browser tests), stopped at exit."""
    global _SHARED
    if _SHARED is None or _SHARED.process.poll() is not None:
        models = make_models_dir(tmp_root / "models")
        seed_hub_style(hub, tmp_root / "hub_style")
        _SHARED = AppProcess(models, tmp_root).wait_ready()
        atexit.register(_SHARED.stop)
    return _SHARED
