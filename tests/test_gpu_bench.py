"""bench/gpu.py: the GPU benchmark's code, run on the CPU at small sizes (the figures need a GPU)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import gpu  # noqa: E402


@pytest.mark.slow
def test_the_gpu_benchmark_runs_every_network_and_the_training_step_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert gpu.main(["--device", "cpu", "--quick", "--modes", "fp32", "channels_last", "--repeats", "1",
                     "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results["inference"]) == set(gpu.NETWORKS)
    for modes in results["inference"].values():
        assert set(modes) == {"fp32", "channels_last"}
        for row in modes.values():
            assert row["images_per_s"] > 0 and row["latency_ms"] > 0 and row["memory_mb_batch"] is None
    assert set(results["training"]) == {"reference fp32", "ours fp32"} and min(results["training"].values()) > 0
    assert "| johnson-rt | channels_last |" in capsys.readouterr().out


def test_without_cuda_it_says_so_and_measures_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gpu.torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--out", str(tmp_path / "gpu.json")]) == 0
    assert "no CUDA device here" in capsys.readouterr().out and not (tmp_path / "gpu.json").exists()
