"""Launch train/train.py through `accelerate launch` (one CPU process) for the training tests."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def launch(args: list[str], **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--num_cpu_threads_per_process", "1", str(REPO / "train" / "train.py"), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, **popen)


def run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    proc = launch(args)
    out, _ = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def base_args(data_dir: Path, photos: Path, out: Path, steps: int = 4) -> list[str]:
    return ["--style", str(data_dir / "styles" / "the_scream.jpg"), "--data", str(photos),
            "--arch", "johnson-lite", "--image_size", "32", "--style_size", "64", "--batch_size", "2",
            "--max_steps", str(steps), "--checkpointing_steps", "2", "--validation_steps", "2",
            "--log_steps", "1", "--output_dir", str(out), "--seed", "3"]
