#!/usr/bin/env python
"""Speed/quality trade-off of the architecture variants, trained with the same settings.

For each trained model folder: parameters, GFLOP at 640x480, frames per second at
640x480 (FastStyle.stylize's CPU fast path, uint8 frame in and out), and the content and
style losses (the training losses, unweighted) on held-out BSDS500 val photos, with the
ratio of each loss to the first model's (the full ``johnson`` network).

    python bench/variants.py outputs/variants/johnson/starry_night models/starry_night \\
        outputs/variants/johnson-rt/starry_night [--photos 8] [--size 256] [--threads 1]

Train the variants with the default networks' recipe, e.g.
``ARCH=johnson-rt OUT=outputs/variants/johnson-rt bash train/train_defaults.sh starry_night``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quality import load_photos, losses  # noqa: E402
from bench.run import conv_macs, stats  # noqa: E402
from fst import FastStyle, TransformerNet, imageio  # noqa: E402
from fst.inference import from_uint8_array  # noqa: E402
from fst.losses import LossWeights, style_grams  # noqa: E402
from fst.vgg import load_vgg16  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def frame_rate(model: FastStyle, repeats: int) -> dict[str, float]:
    """Latency of stylize() on a 640x480 uint8 frame, min and median over ``repeats``."""
    frame = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    model.stylize(frame)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.stylize(frame)
        times.append(time.perf_counter() - start)
    s = stats(times)
    return {"min_ms": s["min"] * 1000, "p50_ms": s["p50"] * 1000, "fps_p50": 1 / s["p50"]}


def _on_meta(config) -> TransformerNet:
    with torch.device("meta"):
        return TransformerNet(config)


def evaluate(folder: Path, photos: list[torch.Tensor], vgg, repeats: int) -> dict:
    model = FastStyle.from_pretrained(folder, device="cpu").eval()
    weights = LossWeights()
    style = from_uint8_array(np.asarray(imageio.read_image(folder / "style.jpg")))
    grams = style_grams(vgg, style, weights.style_layers)
    rows = [losses(vgg, model.stylize(photo), photo, grams, weights) for photo in photos]
    training = model.config.training or {}
    return {
        "folder": str(folder), "arch": model.config.arch, "style": model.config.style_name,
        "params": sum(p.numel() for p in model.net.parameters()),
        "gflop_640x480": 2 * conv_macs(_on_meta(model.config), 480, 640) / 1e9,
        "content": float(np.mean([r["content"] for r in rows])),
        "style_loss": float(np.mean([r["style"] for r in rows])),
        "training": {k: training.get(k) for k in ("max_steps", "image_size", "batch_size", "lr",
                                                   "content_weight", "style_weight", "tv_weight")},
        **frame_rate(model, repeats),
    }


def markdown(rows: list[dict], photos: int, size: int, threads: int) -> str:
    base = rows[0]
    lines = [f"Held-out losses: mean over {photos} BSDS500 val photos at {size} px, unweighted; "
             f"fps: 640x480 uint8 frame in/out, {threads} thread(s), p50.\n",
             "| variant | params | GFLOP 640x480 | fps 640x480 | content loss (vs johnson) | style loss (vs johnson) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['params']:,} | {r['gflop_640x480']:.1f} | {r['fps_p50']:.1f} "
                     f"| {r['content']:.3f} ({r['content'] / base['content']:.2f}x) "
                     f"| {r['style_loss']:.3f} ({r['style_loss'] / base['style_loss']:.2f}x) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from fst.settings import enable_huge_pages

    enable_huge_pages()   # measured as the app and the fst command run: with huge pages (unless set to 0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="trained model folders; the first is the baseline")
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="longer side of the held-out photos")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    photos = load_photos(args.photos, args.size)
    vgg = load_vgg16()
    rows = [evaluate(folder, photos, vgg, args.repeats) for folder in args.folders]
    text = markdown(rows, len(photos), args.size, args.threads)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "variants.json").write_text(json.dumps({"rows": rows, "markdown": text}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
