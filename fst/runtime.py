"""CPU runtime settings: inference threads, CPU features, and how many processes a launch runs.

    >>> from fst.runtime import configure_threads
    >>> configure_threads(reserve=1)          # leave a core to the web server

Call :func:`configure_threads` once, early, before the first inference: NNPACK
sizes its thread pool on first use.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from . import settings


def available_cores() -> int:
    """CPU cores this process may run on (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def configure_threads(threads: int | None = None, reserve: int = 0) -> int:
    """Set PyTorch's intra-op threads: ``threads``, else ``$FST_NUM_THREADS``, else the
    available cores minus ``reserve`` (at least 1). Returns the number set.

    A web app serving one stream on a small machine passes ``reserve=1`` so the server
    (decoding, encoding, networking) keeps a core and frames do not queue behind it.
    """
    if threads is None:
        threads = settings.num_threads()
    if threads is None:
        threads = max(1, available_cores() - reserve)
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    return threads


def cpu_features() -> dict[str, Any]:
    """What the CPU offers for inference (from /proc/cpuinfo and PyTorch)."""
    flags: set[str] = set()
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "model": model,
        "cores": available_cores(),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()),
    }


def has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere it is emulated (slow)."""
    features = cpu_features()
    return bool(features["avx512_bf16"] or features["amx_bf16"]) and features["mkldnn_bf16"]


# --------------------------------------------------------------------------- several processes

#: How launchers (torchrun, ``accelerate launch --multi_gpu``, mpirun) tell each process how many run.
_WORLD_SIZE_ENVS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_TRUE = ("1", "true", "yes", "on")


def launched_world_size() -> int:
    """How many processes the launcher started in all (1 when this process runs alone)."""
    for name in _WORLD_SIZE_ENVS:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def distributed_on_cpu(device: str | torch.device | None = None) -> bool:
    """True when this process is one of several that must talk over gloo on the CPU: no CUDA here,
    or ``device`` is the CPU. Pass it as accelerate's ``cpu=``: without it accelerate finds no GPU
    backend and runs each process as a lone main process (each does all the work, all write)."""
    if launched_world_size() < 2:
        return False
    if device is not None and torch.device(device).type == "cpu":
        return True
    return not torch.cuda.is_available()


def single_process_launch_note() -> str | None:
    """A warning when ``accelerate launch --cpu --num_processes N`` (N > 1) started only this process.

    accelerate's multi-CPU launcher is mpirun (``--mpirun_hostfile``); without it ``--cpu`` runs
    one process. On one machine without a GPU, ``accelerate launch --multi_gpu --num_processes N``
    (torchrun) starts N processes, which then run on the CPU with gloo (see :func:`distributed_on_cpu`).
    """
    if (os.environ.get("ACCELERATE_USE_CPU", "").strip().lower() in _TRUE and os.environ.get("MASTER_ADDR")
            and launched_world_size() == 1 and "LOCAL_RANK" not in os.environ):
        return ("accelerate launch --cpu --num_processes N starts a single process unless MPI is set up "
                "(--mpirun_hostfile); for N processes on this machine use accelerate launch --multi_gpu "
                "--num_processes N (without a GPU they run on the CPU, with gloo)")
    return None
