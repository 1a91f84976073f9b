#!/usr/bin/env python
"""`fst batch` scaling on the CPU: one process against several (accelerate launch), same images.

    python bench/batch.py                       # 16 photos of 512 px, models/starry_night_rt, 1 vs 2 processes
    python bench/batch.py --images 64 --processes 4 --model models/starry_night

Runs, each on a fresh output folder (nothing skipped):

* ``1 proc x 1 thread``: ``fst batch`` with OMP_NUM_THREADS=1;
* ``1 proc x T threads``: ``fst batch`` with one thread per core (T = the cores, its default);
* ``P procs x 1 thread``: ``accelerate launch --multi_gpu --num_processes P --num_cpu_threads_per_process 1
  -m fst.batch`` (without a GPU the processes run on the CPU, over gloo).

Two figures each: ``wall``, the whole command as a user waits for it (interpreter and launcher start,
model load, images); ``work``, the images only (the slowest process's sum of per-image seconds, from
the manifest). Ratios are against ``1 proc x 1 thread``. Prints the CPU and its ISA first, and writes
bench/results/batch.json. Background load distorts the figures: run it on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.run import isa_level  # noqa: E402
from fst.runtime import available_cores, cpu_features  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "photos" / "bsds500" / "val"


def make_images(folder: Path, count: int, size: int) -> None:
    """``count`` photos (BSDS500 val, cycled; random pixels without the shared data) of size x size px."""
    import numpy as np
    from PIL import Image

    photos = sorted(PHOTOS.glob("*.jpg")) if PHOTOS.is_dir() else []
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for index in range(count):
        if photos:
            with Image.open(photos[index % len(photos)]) as photo:
                image = photo.convert("RGB").resize((size, size), Image.BICUBIC)
        else:
            image = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
        image.save(folder / f"{index:04d}.jpg", quality=92)


def run(label: str, command: list[str], out: Path, threads: int | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{label} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    shares: dict[int, float] = {}
    for entry in manifest["done"]:
        shares[entry["rank"]] = shares.get(entry["rank"], 0.0) + entry["seconds"]
    return {"label": label, "wall_s": wall, "work_s": max(shares.values()), "images": len(manifest["done"]),
            "processes": len(manifest["processes"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16, help="how many images (default: 16)")
    parser.add_argument("--size", type=int, default=512, help="their side in pixels (default: 512)")
    parser.add_argument("--model", default=str(ROOT / "models" / "starry_night_rt"), help="style network")
    parser.add_argument("--processes", type=int, default=2, help="processes of the several-process run")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "batch.json", help="JSON report")
    args = parser.parse_args(argv)

    features = cpu_features()
    cores = available_cores()
    print(f"# CPU: {features['model']}; ISA: {isa_level(features)} (PyTorch CPU kernels: "
          f"{features['torch_capability']}); {cores} cores; load average {os.getloadavg()}")
    print(f"# fst batch: {args.images} images of {args.size}x{args.size}, {Path(args.model).name}")
    with tempfile.TemporaryDirectory(prefix="fst-bench-batch-") as tmp:
        images, out = Path(tmp) / "in", Path(tmp) / "out"
        make_images(images, args.images, args.size)
        single = [sys.executable, "-m", "fst", "batch", str(images), "-o", str(out), "--model", args.model,
                  "--device", "cpu"]
        several = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                   "--num_processes", str(args.processes), "--num_machines", "1", "--mixed_precision", "no",
                   "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1",
                   "-m", "fst.batch", str(images), "-o", str(out), "--model", args.model]
        rows = [run("1 proc x 1 thread", single, out, 1),
                run(f"1 proc x {cores} threads", single, out, cores),
                run(f"{args.processes} procs x 1 thread", several, out, None)]
    base = rows[0]
    print(f"{'run':22s} {'wall s':>8s} {'work s':>8s} {'img/s':>7s} {'wall x':>7s} {'work x':>7s}")
    for row in rows:
        row["images_per_s"] = row["images"] / row["work_s"]
        row["wall_speedup"] = base["wall_s"] / row["wall_s"]
        row["work_speedup"] = base["work_s"] / row["work_s"]
        print(f"{row['label']:22s} {row['wall_s']:8.2f} {row['work_s']:8.2f} {row['images_per_s']:7.1f} "
              f"{row['wall_speedup']:6.2f}x {row['work_speedup']:6.2f}x")
    print(f"# {args.processes} processes vs 1 process x {cores} threads: wall "
          f"{rows[1]['wall_s'] / rows[2]['wall_s']:.2f}x, work {rows[1]['work_s'] / rows[2]['work_s']:.2f}x")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": {**features, "isa": isa_level(features), "cores": cores,
                          "load_average": os.getloadavg()},
              "images": args.images, "size": args.size, "model": Path(args.model).name, "runs": rows}
    args.output.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
