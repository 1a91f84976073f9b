"""Faults outside the code: a full disk under the Hub cache and under training checkpoints, and a
publish killed (SIGKILL) in the middle of its Hub upload.

The full disk is a small tmpfs mounted for the test (root, as in CI). Where mounting is not
allowed, the writing child process gets an RLIMIT_FSIZE instead: every file it writes stops at
that size with EFBIG ("File too large") rather than ENOSPC, the same failure for the code under
test except for the wording, which the assertions take from the disk actually used.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from app_helpers import REPO_ROOT, tiny_style, write_style_image

from fst import FastStyle
from fst.errors import HubError

pytestmark = pytest.mark.subprocess   # every fault happens in a child process

# Run first in every child: the RLIMIT_FSIZE fallback (SIGXFSZ ignored, so writes fail with EFBIG).
PRELUDE = f"""
import os, resource, signal, sys
sys.path.insert(0, {str(REPO_ROOT)!r})
if os.environ.get("FST_TEST_FSIZE"):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE,
                       (int(os.environ["FST_TEST_FSIZE"]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
"""


class SmallDisk:
    """A folder on a filesystem of ``size`` bytes: a tmpfs when this process may mount one, else an
    RLIMIT_FSIZE of ``size`` for the children (``env()``) that write there."""

    def __init__(self, path: Path, size: int):
        path.mkdir(parents=True, exist_ok=True)
        self.path, self.size, self.tmpfs = path, size, False
        if not os.environ.get("FST_TEST_NO_TMPFS"):     # set it to test the fallback
            try:
                self.tmpfs = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                            capture_output=True, check=False).returncode == 0
            except OSError:   # no mount(8)
                pass
        self.limited = True
        # What a write past the end says: ENOSPC on the tmpfs, EFBIG under the file-size limit.
        self.full_error = "No space left on device" if self.tmpfs else "File too large"

    def env(self) -> dict[str, str]:
        """Environment for a child process that writes to the disk."""
        return {"FST_TEST_FSIZE": str(self.size)} if self.limited and not self.tmpfs else {}

    def free_space(self, size: int = 64 << 20) -> None:
        """Make room: the tmpfs grows to ``size`` (its files stay), or the file-size limit goes."""
        if self.tmpfs:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)
        self.limited = False

    def remove(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


def run_child(code: str, *args: str, env: dict[str, str] | None = None,
              timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args], cwd=REPO_ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
                          check=False)


def tensor_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------ the Hub cache
LOAD_CHILD = """
import hashlib, json
from fst import FastStyle
from fst.errors import HubError

def tensor_digest(model):   # as in the test module
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()

try:
    model = FastStyle.from_pretrained(sys.argv[1], cache_dir=sys.argv[2])
except HubError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
else:
    print(json.dumps({"digest": tensor_digest(model)}))
"""


def _child_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_hub_cache_on_a_full_disk_gives_a_clear_error_and_no_corrupt_entry(tmp_path, hub):
    repo = "fst-tests/too-big-for-the-disk"
    torch.manual_seed(0)
    model = FastStyle(channels=16, num_res_blocks=3)        # weights of ~1.1 MB, config.json of ~300 bytes
    model.save_pretrained(tmp_path / "model")
    hub.seed_repo(repo, tmp_path / "model")
    disk = SmallDisk(tmp_path / "disk", 256 << 10)           # room for the config, not the weights
    try:
        failed = _child_json(run_child(LOAD_CHILD, repo, str(disk.path), env=disk.env()))
        assert failed.get("error") == "HubError", failed
        assert failed["message"] == f"could not store {repo} in the cache: {disk.full_error}"
        # No partial download is left to be mistaken for the weights.
        files = [p for p in disk.path.rglob("*") if p.is_file() or p.is_symlink()]
        assert not [p for p in files if p.name.endswith(".incomplete")]
        snapshot_weights = [p for p in files if p.name == "model.safetensors"]
        assert all(p.resolve().stat().st_size == (tmp_path / "model" / "model.safetensors").stat().st_size
                   for p in snapshot_weights)

        disk.free_space()                                    # the next start, with room: it works
        loaded = _child_json(run_child(LOAD_CHILD, repo, str(disk.path), env=disk.env()))
        assert loaded == {"digest": tensor_digest(model)}
    finally:
        disk.remove()


# ---------------------------------------------------------------------------------- checkpoints
CHECKPOINT_CHILD = """
import dataclasses, json, shutil
from pathlib import Path
import torch
from accelerate import Accelerator
from fst.errors import FstError
from train.common import Checkpoints, TrainState

disk, mode, writer = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
PAGE = 4096
accelerator = Accelerator(cpu=True)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(100, 200), torch.nn.Linear(200, 100))   # 160 KB of weights
optimizer = torch.optim.Adam(model.parameters())
model, optimizer = accelerator.prepare(model, optimizer)

def step():
    model(torch.rand(4, 100)).square().mean().backward()
    optimizer.step()
    optimizer.zero_grad()

step()
checkpoints = Checkpoints(disk / "out", keep=2)
first = checkpoints.save(accelerator, TrainState(step=1))
kept = {k: v.clone() for k, v in model.state_dict().items()}
step()
sizes = {p.name: p.stat().st_size for p in first.iterdir()}
pages = {name: -(-size // PAGE) * PAGE for name, size in sizes.items()}
order = ["model.safetensors", "optimizer.bin", "random_states_0.pkl", "fst_train_state.json"]
assert sorted(sizes) == sorted(order), sizes
# Room for the files written before `writer`, and for `writer` less one page: that write fails.
before = order[:order.index(writer)]
filler = disk / "filler"
if mode == "tmpfs":
    room = sum(pages[name] for name in before) + pages[writer] - PAGE
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as handle:
        handle.write(b"\\0" * (free - room))
else:   # a file-size limit: the writer's file is cut short, the smaller ones before it fit
    limit = sizes[writer] - 1000
    assert all(sizes[name] <= limit for name in before), (writer, sizes)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
try:
    checkpoints.save(accelerator, TrainState(step=2))
    outcome = {"saved": True}
except FstError as exc:
    outcome = {"message": str(exc), "cause": type(exc.__context__).__name__}
if mode == "tmpfs":
    filler.unlink()
else:
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
outcome["left"] = sorted(p.name for p in checkpoints.root.iterdir())
outcome["latest"] = checkpoints.latest().name
accelerator.load_state(str(checkpoints.latest()))          # the kept checkpoint resumes, weights of step 1
outcome["resumed_step_1"] = all(torch.equal(v, kept[k]) for k, v in model.state_dict().items())
step()
outcome["saved_after_freeing"] = checkpoints.save(accelerator, TrainState(step=2)).name
outcome["complete"] = [p.name for p in checkpoints.complete()]
print(json.dumps(outcome))
"""

WRITERS = {   # the file whose write hits the full disk -> the error its writer raises
    "model.safetensors": "SafetensorError",
    "optimizer.bin": "RuntimeError",               # torch.save: "[enforce fail ...] unexpected pos ..."
    "random_states_0.pkl": "RuntimeError",
    "fst_train_state.json": "OSError",
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_checkpoint_on_a_full_disk_keeps_the_previous_one(tmp_path, writer):
    disk = SmallDisk(tmp_path / "disk", 4 << 20)
    try:
        if not disk.tmpfs and writer in ("random_states_0.pkl", "fst_train_state.json"):
            pytest.skip("a file-size limit cannot cut these small files alone (needs a tmpfs)")
        outcome = _child_json(run_child(CHECKPOINT_CHILD, str(disk.path), "tmpfs" if disk.tmpfs else "rlimit",
                                        writer))
    finally:
        disk.remove()
    assert "saved" not in outcome, f"the checkpoint was written on a full disk: {outcome}"
    assert outcome["cause"] == WRITERS[writer], outcome
    final = tmp_path / "disk" / "out" / "checkpoints" / "checkpoint-2"
    assert outcome["message"].startswith(f"could not write checkpoint {final} (")
    assert outcome["message"].endswith("); the previous checkpoint is kept. Free disk space and resume.")
    if disk.tmpfs:
        assert "(No space left on device" in outcome["message"]
    assert outcome["left"] == ["checkpoint-1"], "a partial checkpoint-2(.tmp) was left behind"
    assert outcome["latest"] == "checkpoint-1" and outcome["resumed_step_1"]
    assert outcome["saved_after_freeing"] == "checkpoint-2"
    assert outcome["complete"] == ["checkpoint-1", "checkpoint-2"]


# ------------------------------------------------------------------------- publish killed mid-upload
COMMIT_DELAY = 10.0


def test_publish_killed_during_the_upload_is_retried_to_a_complete_repo(tmp_path, hub):
    repo = "fst-tests/killed-upload"
    folder = tmp_path / "starry"
    model = tiny_style(7, style_name="Killed upload")
    model.save_pretrained(folder)
    write_style_image("starry_night.jpg", folder / "style.jpg")
    (folder / "README.md").write_text("---\nlicense: mit\nlibrary_name: fst\ntags:\n- fast-style-transfer\n---\n"
                                      "# killed upload\n", encoding="utf-8")
    (folder / "checkpoints" / "checkpoint-4").mkdir(parents=True)            # never uploaded
    (folder / "checkpoints" / "checkpoint-4" / "optimizer.bin").write_bytes(b"\0" * 100)
    command = [sys.executable, "-m", "train.publish", str(folder), "--hub_model_id", repo]

    # The commit (the last request of an upload) is held open by the server; the process is killed there.
    commit = hub.inject(rf"^/api/models/{repo}/commit/", "delay", seconds=COMMIT_DELAY)
    try:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while commit.hits == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        held_at = time.monotonic()
        assert proc.poll() is None, f"publish ended before its commit was held: {proc.communicate()[0][-2000:]}"
        assert commit.hits == 1, "the commit never reached the Hub"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        hub.remove_fault(commit)

    # Killed: the repo exists (created first) but holds none of the model; loading it says so.
    assert hub.list_files(repo) == [".gitattributes"]
    with pytest.raises(HubError, match="has no config.json; it is not an fst model repository"):
        FastStyle.from_pretrained(repo, cache_dir=tmp_path / "cache-half")

    hub.clear_requests()
    retry = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert f"published to {hub.url}/{repo}" in retry.stdout
    # The weights reached the Hub's LFS storage before the kill: the retry sends only what is missing.
    assert not [path for method, path in hub.requests if method == "PUT" and path.startswith("/__lfs__/")]
    assert_complete(hub, repo, model, tmp_path / "cache-retry")

    # The killed process's commit was already on the server: it lands once its delay ends. Same files.
    time.sleep(max(0.0, held_at + COMMIT_DELAY + 2 - time.monotonic()))
    assert_complete(hub, repo, model, tmp_path / "cache-late")
    assert hub.errors == []


def assert_complete(hub, repo: str, model: FastStyle, cache: Path) -> None:
    files = set(hub.list_files(repo))
    assert {"config.json", "model.safetensors", "README.md", "style.jpg"} <= files
    assert not [f for f in files if f.startswith("checkpoints/")]
    remote = FastStyle.from_pretrained(repo, cache_dir=cache)
    assert tensor_digest(remote) == tensor_digest(model)
