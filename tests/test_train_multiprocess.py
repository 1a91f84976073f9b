"""Training on two processes (DDP over gloo, on the CPU) through `accelerate launch`.

The launch form is ``accelerate launch --multi_gpu --num_processes 2``: on a machine without a GPU
the training scripts then run both processes on the CPU with gloo (fst.runtime.distributed_on_cpu).
(``accelerate launch --cpu --num_processes 2`` starts a single process: accelerate's multi-CPU
launcher is mpirun; the scripts warn about it.)

Checked: the runs end to end (train.py and train_colorize.py); the processes' shards of each epoch are
disjoint and cover the data (FST_DEBUG_SHARDS=1 logs the indices); both replicas end with the same
weights (a digest logged by each process); only the main process writes outputs (an audit hook in the
other process logs its writes; see WRITE_HOOK); the result equals one process at the same global batch;
a SIGKILL of one process followed by ``--resume_from_checkpoint latest`` ends with the same weights.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fst import FastStyle

REPO = Path(__file__).resolve().parents[1]
STEPS = 10
SHARD_RE = re.compile(r"process (\d+)/2 epoch (\d+) batch \d+ indices \[([\d, ]*)\]")
DIGEST_RE = re.compile(r"process (\d+)/2 weights ([0-9a-f]{64})")

# Installed as sitecustomize in the launched processes: every process records its pid; each logs the
# writes it makes under FST_TEST_WATCH_DIR (files opened for writing, folders made, renames, removals).
# Python-level only: torch.save and safetensors write from C++/Rust, but every code path that writes a
# model folder, a sample or a checkpoint also writes Python-level files (JSON, images, folders).
WRITE_HOOK = r'''
import os, sys
_rank, _logs, _watch = os.environ.get("RANK"), os.environ.get("FST_TEST_WRITE_LOG"), os.environ.get("FST_TEST_WATCH_DIR")
if _rank is not None and _logs and _watch:
    _watch = os.path.abspath(_watch)
    with open(os.path.join(_logs, f"pid-{_rank}"), "w") as _file:
        _file.write(str(os.getpid()))
    _fd = os.open(os.path.join(_logs, f"writes-{_rank}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    _PATHS = {"os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate", "os.symlink", "os.link"}

    def _note(event, path):
        if isinstance(path, (str, bytes, os.PathLike)):
            path = os.path.abspath(os.fsdecode(path))
            if path == _watch or path.startswith(_watch + os.sep):
                os.write(_fd, f"{event}\t{path}\n".encode("utf-8", "surrogateescape"))

    def _hook(event, args):
        if event == "open" and isinstance(args[2], int) and args[2] & _WRITE:
            _note(event, args[0])
        elif event == "os.rename":
            _note(event, args[0])
            _note(event, args[1])
        elif event in _PATHS:
            _note(event, args[0])

    sys.addaudithook(_hook)
'''


pytestmark = pytest.mark.usefixtures("vgg_weights")


@pytest.fixture(scope="module")
def photos(train_photos) -> Path:
    """8 photos: 2 processes x batch 2 = 2 steps an epoch, the same global batches as 1 process x batch 4."""
    return train_photos(8)


@pytest.fixture(scope="module")
def hook_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hook")
    (folder / "sitecustomize.py").write_text(WRITE_HOOK)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(script: str, args: list[str], out: Path, hook_dir: Path, processes: int = 2, **popen) -> subprocess.Popen:
    kind = ["--multi_gpu", "--main_process_port", str(free_port())] if processes > 1 else ["--cpu"]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *kind, "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--num_cpu_threads_per_process", "1", str(REPO / "train" / script), *args, "--output_dir", str(out)]
    logs = out.parent / f"{out.name}-writes"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FST_DEBUG_SHARDS": "1", "FST_TEST_WRITE_LOG": str(logs), "FST_TEST_WATCH_DIR": str(out),
           "PYTHONPATH": os.pathsep.join([str(hook_dir), str(REPO)])}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
                            **popen)


def run(script: str, args: list[str], out: Path, hook_dir: Path, processes: int = 2) -> str:
    proc = launch(script, args, out, hook_dir, processes)
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output[-3000:]
    return output


def style_args(data_dir: Path, photos: Path, batch_size: int) -> list[str]:
    return ["--style", str(data_dir / "styles" / "the_scream.jpg"), "--data", str(photos), "--arch", "johnson-lite",
            "--image_size", "32", "--style_size", "64", "--batch_size", str(batch_size), "--max_steps", str(STEPS),
            "--checkpointing_steps", "2", "--checkpoints_total_limit", str(STEPS), "--validation_steps", "4",
            "--log_steps", "1", "--seed", "3"]


def check_shards(output: str, count: int) -> None:
    """In every epoch the two processes trained on disjoint shards that together cover the data."""
    seen: dict[tuple[int, int], list[int]] = {}
    for rank, epoch, indices in SHARD_RE.findall(output):
        seen.setdefault((int(epoch), int(rank)), []).extend(int(i) for i in indices.split(", "))
    epochs = {epoch for epoch, _ in seen}
    assert epochs and all((epoch, 1) in seen for epoch in epochs), output[-2000:]
    for epoch in epochs:
        first, second = seen[(epoch, 0)], seen[(epoch, 1)]
        assert not set(first) & set(second), (epoch, first, second)
        if epoch < max(epochs):        # the last one may stop mid-epoch
            assert sorted(first + second) == list(range(count)), (epoch, first, second)


def check_replicas_agree(output: str) -> None:
    digests = dict(DIGEST_RE.findall(output))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], digests


def check_only_the_main_process_writes(out: Path, produced: tuple[str, ...]) -> None:
    """Process 1 made no file, folder or rename under the output folder; process 0 made the outputs
    (which also shows that the hook sees these writes)."""
    logs = out.parent / f"{out.name}-writes"
    main = (logs / "writes-0.log").read_text()
    assert all(name in main for name in produced), main[-2000:]
    assert (logs / "pid-1").is_file()          # the hook ran in process 1
    other = (logs / "writes-1.log").read_text() if (logs / "writes-1.log").exists() else ""
    for line in other.splitlines():
        event, path = line.split("\t")
        # accelerate's save_state makes the checkpoint folder on every process with
        # os.makedirs(exist_ok=True): a mkdir of the folder process 0 made, which changes nothing.
        assert event == "os.mkdir" and re.search(r"/checkpoints/checkpoint-\d+\.tmp$", path), line
    random_states = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*/random_states_*.pkl"))
    assert "random_states_1.pkl" in random_states    # what process 1 does save (from C++), for exact resume


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model.safetensors")


@pytest.fixture(scope="module")
def two_processes(data_dir, photos, hook_dir, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("two") / "model"
    return out, run("train.py", style_args(data_dir, photos, 2), out, hook_dir)


@pytest.mark.subprocess
def test_two_processes_shard_the_data_agree_and_only_the_main_one_writes(two_processes):
    out, output = two_processes
    for name in ("config.json", "model.safetensors", "README.md", "style.jpg", "samples.jpg"):
        assert (out / name).is_file(), name
    assert FastStyle.from_pretrained(out).config.arch == "johnson-lite"
    assert "starts a single process" not in output
    check_shards(output, 8)
    check_replicas_agree(output)
    check_only_the_main_process_writes(out, ("samples/step-000004.png", "config.json", "README.md", "samples.jpg",
                                             "fst_train_state.json", "checkpoint-10"))


@pytest.mark.subprocess
def test_two_processes_equal_one_process_at_the_same_global_batch(two_processes, data_dir, photos, hook_dir,
                                                                  tmp_path):
    """2 processes x batch 2 against 1 process x batch 4: the same global batches in the same order, and
    the same loss (the content term is relative to the whole global batch's energy on both).

    They differ by float rounding only (gradients summed in another order), but training amplifies it:
    Adam divides each gradient element by its own running size, so an element whose gradient is near
    zero steps by up to +-lr on rounding noise alone, and how many such elements there are depends on
    the CPU's kernels. So the weights are compared as a population: a real difference (other batches,
    another loss) moves nearly every element by about lr per step (median 9e-4 from step 2 to 4 here),
    rounding moves a few. Seen on an AMD EPYC (lr 1e-3): after 2 steps 99.97% of the elements within
    1e-5 (median 4e-8, the worst 4e-4) and outputs within 7e-5 on average; after 4 steps a median of
    1.1e-5 and outputs within 7e-4 on average. Checked with a margin of about 10x.
    """
    two, _ = two_processes
    one = tmp_path / "one"
    run("train.py", style_args(data_dir, photos, 4), one, hook_dir, processes=1)
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 3, 40, 56, generator=generator), torch.rand(1, 3, 64, 64, generator=generator)]
    reference = FastStyle.from_pretrained(one)
    for step, share_within_1e5, median_bound, output_bound in ((2, 0.999, 1e-6, 1e-3), (4, None, 1e-4, 5e-3)):
        a = load_file(one / "checkpoints" / f"checkpoint-{step}" / "model.safetensors")
        b = load_file(two / "checkpoints" / f"checkpoint-{step}" / "model.safetensors")
        assert a.keys() == b.keys()
        weights = [name for name in a if name.endswith("weight")]
        difference = torch.cat([(a[name] - b[name]).abs().flatten() for name in weights])
        assert difference.median() < median_bound, (step, float(difference.median()))
        if share_within_1e5 is not None:
            assert (difference <= 1e-5).float().mean() >= share_within_1e5, (step, float(difference.max()))
        first, second = FastStyle(reference.config).eval(), FastStyle(reference.config).eval()
        first.load_state_dict(a)
        second.load_state_dict(b)
        for image in images:
            gap = (first.stylize(image) - second.stylize(image)).abs().mean()
            assert gap < output_bound, (step, float(gap))


@pytest.mark.subprocess
def test_kill_one_process_then_resume_gives_the_same_weights(two_processes, data_dir, photos, hook_dir, tmp_path):
    reference, _ = two_processes
    out = tmp_path / "killed"
    args = style_args(data_dir, photos, 2)
    proc = launch("train.py", args, out, hook_dir, start_new_session=True)
    pid_file = out.parent / f"{out.name}-writes" / "pid-1"
    deadline = time.time() + 180
    while time.time() < deadline and not (out / "checkpoints" / "checkpoint-2").is_dir():
        time.sleep(0.02)
    assert pid_file.is_file(), "process 1 never started"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    try:
        output, _ = proc.communicate(timeout=90)     # the launcher stops process 0 and exits
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    assert proc.returncode != 0
    assert not (out / "model.safetensors").exists(), "the run finished before it could be killed"

    shutil.rmtree(out.parent / f"{out.name}-writes")
    resumed = run("train.py", args + ["--resume_from_checkpoint", "latest"], out, hook_dir)
    assert "resumed from" in resumed
    check_replicas_agree(resumed)
    a, b = final_weights(reference), final_weights(out)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.subprocess
def test_colorizer_trains_on_two_processes(data_dir, photos, hook_dir, tmp_path):
    from fst.colorizer import Colorizer

    out = tmp_path / "colorizer"
    output = run("train_colorize.py", [
        "--data", str(photos), "--labels", "none", "--width", "0.1", "--image_size", "32", "--batch_size", "2",
        "--max_steps", "4", "--checkpointing_steps", "2", "--validation_steps", "2", "--log_steps", "1",
        "--validation_images", str(data_dir / "photos" / "bsds500" / "val" / "3096.jpg")], out, hook_dir)
    model = Colorizer.from_pretrained(out, device="cpu")
    assert model(torch.rand(3, 20, 24)).shape == (3, 20, 24)
    check_shards(output, 8)
    check_replicas_agree(output)      # parameters; batch-norm statistics follow each process's batches
    check_only_the_main_process_writes(out, ("samples/step-000002.png", "config.json", "README.md", "samples.jpg"))


def test_loader_configuration_gives_disjoint_shards():
    """In-process: the data loader as train_loop prepares it, on each of 2 processes (whose torch seeds
    differ, as set_seed(device_specific=True) makes them), yields disjoint shards of one permutation."""
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import DataLoader

    from train.common import loader_configuration

    config = loader_configuration(3)
    shards = []
    for rank in range(2):
        torch.manual_seed(3 + rank)
        loader = DataLoader(list(range(16)), batch_size=2, shuffle=True, drop_last=True,
                            generator=torch.Generator().manual_seed(3))
        loader = prepare_data_loader(loader, num_processes=2, process_index=rank, put_on_device=False,
                                     use_seedable_sampler=config.use_seedable_sampler,
                                     data_seed=getattr(config, "data_seed", None))
        shards.append([int(i) for batch in loader for i in batch])
    assert not set(shards[0]) & set(shards[1]) and sorted(shards[0] + shards[1]) == list(range(16))


@pytest.mark.slow
def test_content_term_over_processes_equals_the_global_batch():
    """In-process, 2 simulated processes: with sum_over_processes, the averaged gradients (what DDP
    applies) and the averaged loss equal those of one process on the whole batch."""
    from fst.losses import PerceptualLoss
    from fst.vgg import load_vgg16

    torch.manual_seed(0)
    criterion = PerceptualLoss(load_vgg16(), torch.rand(1, 3, 32, 32))
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    content = torch.rand(4, 3, 32, 32)
    content[2:] *= 0.3                      # halves of different energy: a per-process ratio would differ

    def gradients(loss: torch.Tensor) -> list[torch.Tensor]:
        net.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in net.parameters()]

    whole = criterion(net(content), content)
    expected = gradients(whole.total)
    halves = (content[:2], content[2:])
    sent: list[torch.Tensor] = []
    for half in halves:                     # what each process contributes to the sum
        criterion(net(half), half, sum_over_processes=lambda t: sent.append(t.detach()) or t)
    summed = sent[0] + sent[1]
    terms = [criterion(net(half), half, sum_over_processes=lambda t: summed) for half in halves]
    averaged = [sum(parts) / 2 for parts in zip(*(gradients(t.total) for t in terms))]
    for got, want in zip(averaged, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close((terms[0].content + terms[1].content) / 2, whole.content)
    plain = [criterion(net(half), half) for half in halves]       # without it: not the global batch's loss
    gap = ((plain[0].content + plain[1].content) / 2 - whole.content).abs().item()
    assert gap > 1e-3 * whole.content.item()
