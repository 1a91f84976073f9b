#!/usr/bin/env python
"""GPU figures: the style networks and the colorizer at inference, and a training step.

    python bench/gpu.py                 # on a CUDA machine: the full run (a few minutes)
    python bench/gpu.py --quick         # small sizes, few repeats
    python bench/gpu.py --device cpu --quick --modes fp32 channels_last   # a smoke run of the same code on the CPU

For each network (``johnson``, the webcam network ``johnson-rt`` and the colorizer ``vgg16-color``;
random weights: speed does not depend on them) and each mode (fp32, fp16 autocast, channels_last,
channels_last + fp16, and torch.compile + channels_last + fp16 with ``--compile``):

- throughput at 256x256, batch 64 (images/s),
- latency of one 1920x1080 frame (ms),
- the peak GPU memory of each (``torch.cuda.max_memory_allocated``).

Then images/s of one training step (batch 16, 256 px: ``johnson`` with this project's loss, in fp32
and, on a GPU, with fp16 autocast, against the pytorch/examples trainer of bench/reference.py in fp32).

GPU times come from CUDA events after warm-up (medians); CPU times from ``time.perf_counter``.
Without CUDA and without ``--device cpu`` it says so and exits 0. Results: bench/results/gpu.json.
Targets on an H100-class GPU: ``johnson`` at 1920x1080 under 5 ms in fp16, >= 2,000 images/s at
256x256.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
NETWORKS = ("johnson", "johnson-rt", "vgg16-color")
#: name -> (channels_last, autocast to half precision, torch.compile)
MODES = {"fp32": (False, False, False), "fp16": (False, True, False), "channels_last": (True, False, False),
         "channels_last+fp16": (True, True, False), "compile+channels_last+fp16": (True, True, True)}


def half_dtype(device: torch.device) -> torch.dtype:
    """The autocast dtype of the "fp16" modes: float16 on CUDA, bfloat16 on the CPU (which has no fp16 convs)."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` (CUDA events on a GPU)."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000)
        else:
            started = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def peak_memory_mb(device: torch.device, fn: Callable[[], Any]) -> float | None:
    """Peak GPU memory allocated while ``fn`` runs (None on the CPU)."""
    if device.type != "cuda":
        fn()
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def build_network(name: str, device: torch.device) -> tuple[torch.nn.Module, int]:
    """(the bare network in eval mode, its input channels): a style network takes RGB, the colorizer L."""
    torch.manual_seed(0)
    if name == "vgg16-color":
        from fst import Colorizer
        from fst.colorizer import config_for_arch

        return Colorizer(config_for_arch(name)).net.eval().to(device), 1
    from fst import FastStyle, config_for_arch

    return FastStyle(config_for_arch(name)).net.eval().to(device), 3


def runner(net: torch.nn.Module, device: torch.device, mode: str) -> Callable[[torch.Tensor], Any]:
    """``x -> net(x)`` in ``mode`` (inference mode; autocast and memory format as the mode says)."""
    channels_last, half, compiled = MODES[mode]
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    forward = torch.compile(net, dynamic=False) if compiled else net

    def run(x: torch.Tensor) -> Any:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(device.type, dtype=half_dtype(device)) if half else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            return forward(x)
    return run


def inference_figures(name: str, mode: str, device: torch.device, sizes: dict[str, Any], repeats: int) -> dict:
    net, channels = build_network(name, device)
    run = runner(net, device, mode)
    batch, side = sizes["batch"], sizes["side"]
    height, width = sizes["frame"]
    tiles = torch.rand(batch, channels, side, side, device=device)
    frame = torch.rand(1, channels, height, width, device=device)
    throughput_s = timed(lambda: run(tiles), device, repeats)
    latency_s = timed(lambda: run(frame), device, repeats)
    return {"images_per_s": batch / throughput_s, "latency_ms": latency_s * 1000,
            "memory_mb_batch": peak_memory_mb(device, lambda: run(tiles)),
            "memory_mb_frame": peak_memory_mb(device, lambda: run(frame))}


def training_figures(device: torch.device, batch: int, side: int, repeats: int) -> dict:
    """Images/s of one optimisation step: this project's ``johnson`` trainer (fp32, fp16 autocast with
    gradient scaling) against the pytorch/examples one (fp32)."""
    from bench.reference import ReferenceTrainer
    from fst import FastStyle, config_for_arch
    from fst.losses import LossWeights, PerceptualLoss
    from fst.vgg import VGG16Features

    torch.manual_seed(0)
    x = torch.rand(batch, 3, side, side, device=device)
    style = torch.rand(1, 3, side, side, device=device)
    reference = ReferenceTrainer(style_size=side, batch_size=batch)
    reference.transformer.to(device)
    reference.vgg.to(device)
    reference.gram_style = [g.to(device) for g in reference.gram_style]

    def ours(half: bool) -> Callable[[], None]:
        vgg = VGG16Features(normalisation="caffe").to(device)
        model = FastStyle(config_for_arch("johnson")).to(device).train()
        criterion = PerceptualLoss(vgg, style, LossWeights()).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler(device.type, enabled=half and device.type == "cuda")

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            autocast = torch.autocast(device.type, dtype=half_dtype(device)) if half else contextlib.nullcontext()
            with autocast:
                total = criterion(model(x), x).total
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
        return step

    steps = {"reference fp32": lambda: reference.step(x * 255), "ours fp32": ours(False)}
    if device.type == "cuda":   # half precision on a CPU without native bf16 is emulated: not worth timing
        steps["ours fp16"] = ours(True)
    return {name: batch / timed(step, device, repeats) for name, step in steps.items()}


def markdown(results: dict) -> str:
    lines = [f"Device: {results['device_name']}; torch {results['torch']}.", "",
             f"| network | mode | images/s at {results['sizes']['side']}px, batch {results['sizes']['batch']} "
             f"| {results['sizes']['frame'][1]}x{results['sizes']['frame'][0]} latency (ms) | peak memory (MB) |",
             "|---|---|---|---|---|"]
    for name, modes in results["inference"].items():
        for mode, row in modes.items():
            if "error" in row:
                lines.append(f"| {name} | {mode} | {row['error']} | | |")
                continue
            memory = "-" if row["memory_mb_batch"] is None else \
                f"{row['memory_mb_batch']:.0f} / {row['memory_mb_frame']:.0f}"
            lines.append(f"| {name} | {mode} | {row['images_per_s']:.0f} | {row['latency_ms']:.1f} | {memory} |")
    training = results["training"]
    best_ours = max(value for name, value in training.items() if name.startswith("ours"))
    lines += ["", f"Training step (`johnson`, batch {results['sizes']['train_batch']}, "
              f"{results['sizes']['train_side']} px), images/s: "
              + ", ".join(f"{name} {value:.1f}" for name, value in training.items())
              + f" (ours / reference: {best_ours / training['reference fp32']:.2f}x)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a smoke run")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compiling)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=None,
                        help="only these modes (default: all; compile only with --compile)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure (default 20, --quick 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results go")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure (run it on a GPU machine, or --device cpu for a smoke run)")
        return 0
    quick = args.quick
    repeats = args.repeats or (3 if quick else 20)
    sizes = {"batch": 4 if quick else 64, "side": 64 if quick else 256, "frame": (96, 128) if quick else (1080, 1920),
             "train_batch": 2 if quick else 16, "train_side": 64 if quick else 256}
    modes = args.modes or [m for m in MODES if args.compile or not MODES[m][2]]
    torch.backends.cudnn.benchmark = device.type == "cuda"
    results: dict[str, Any] = {
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "torch": torch.__version__, "sizes": sizes, "repeats": repeats, "inference": {}, "training": {}}
    for name in NETWORKS:
        results["inference"][name] = {}
        for mode in modes:
            try:
                row = inference_figures(name, mode, device, sizes, repeats)
            except (RuntimeError, NotImplementedError) as exc:   # e.g. a mode this device or build lacks
                row = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
            results["inference"][name][mode] = row
            print(name, mode, json.dumps(row), flush=True)
    results["training"] = training_figures(device, sizes["train_batch"], sizes["train_side"], max(2, repeats // 2))
    print(json.dumps(results["training"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print("\n" + markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
