#!/usr/bin/env python
"""Quality of the embedded default networks on held-out photos (bsds500/val: never trained on).

Styles: content loss and style loss (the training losses, unweighted) of
  - the unstyled photo (the starting point),
  - the feed-forward network's output,
  - the Gatys et al. optimisation result (L-BFGS, same loss, initialised from the photo),
and the time each takes, so the speed-up is stated next to the quality it buys.
Colorizer: PSNR / SSIM / colourfulness / ab-MSE against ground truth, next to the two
baselines "keep it gray" and "mean ab of the training set".

    python bench/quality.py [--quick] [--write-cards]

`--write-cards` puts the figures into each model's card (models/<name>/README.md).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fst import Colorizer, FastStyle, catalog, imageio  # noqa: E402
from fst.gatys import optimize  # noqa: E402
from fst.inference import from_uint8_array, resize_max_side  # noqa: E402
from fst.losses import LossWeights, content_loss, style_grams, style_loss  # noqa: E402
from fst.metrics import ab_mse, colorfulness, gray_baseline, mean_ab_baseline, psnr, ssim  # noqa: E402
from fst.vgg import load_vgg16  # noqa: E402

HELD_OUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos" / "bsds500" / "val"
RESULTS = Path(__file__).resolve().parent / "results"
SECTION = "## Quality on held-out photos"


def load_photos(count: int, size: int) -> list[torch.Tensor]:
    paths = sorted(HELD_OUT.glob("*.jpg"))[:count]
    return [resize_max_side(from_uint8_array(np.asarray(imageio.read_image(p))), size) for p in paths]


def losses(vgg, image: torch.Tensor, content: torch.Tensor, grams, weights: LossWeights) -> dict[str, float]:
    layers = list(dict.fromkeys([weights.content_layer, *weights.style_layers]))
    with torch.no_grad():
        feats, target = vgg(image, layers), vgg(content, [weights.content_layer])
        return {"content": float(content_loss(feats[weights.content_layer], target[weights.content_layer])),
                "style": float(style_loss(feats, grams, weights.style_layers))}


def evaluate_style(entry, photos, vgg, gatys_steps: int) -> dict:
    model = FastStyle.from_pretrained(entry.path, device="cpu")
    weights = LossWeights()
    style = from_uint8_array(np.asarray(imageio.read_image(entry.path / "style.jpg")))
    grams = style_grams(vgg, style, weights.style_layers)
    rows = {"photo": [], "network": [], "gatys": []}
    times = {"network": [], "gatys": []}
    for photo in photos:
        rows["photo"].append(losses(vgg, photo, photo, grams, weights))
        start = time.perf_counter()
        styled = model.stylize(photo)
        times["network"].append(time.perf_counter() - start)
        rows["network"].append(losses(vgg, styled, photo, grams, weights))
        start = time.perf_counter()
        result = optimize(photo, style, steps=gatys_steps, weights=weights, vgg=vgg)
        times["gatys"].append(time.perf_counter() - start)
        rows["gatys"].append(losses(vgg, result.image, photo, grams, weights))
    mean = {k: {m: float(np.mean([r[m] for r in v])) for m in ("content", "style")} for k, v in rows.items()}
    seconds = {k: float(np.mean(v)) for k, v in times.items()}
    return {"losses": mean, "seconds": seconds, "speedup": seconds["gatys"] / max(seconds["network"], 1e-9),
            "photos": len(photos), "gatys_steps": gatys_steps, "size": int(max(photos[0].shape[-2:]))}


def evaluate_colorizer(entry, photos) -> dict:
    model = Colorizer.from_pretrained(entry.path, device="cpu")
    mean = (model.config.training or {}).get("mean_ab", [0.0, 0.0])
    candidates = {"colorizer": lambda x: model.colorize(x), "keep it gray": gray_baseline,
                  "mean ab of training set": lambda x: mean_ab_baseline(x, mean)}
    table = {}
    for name, fn in candidates.items():
        outs = [fn(p) for p in photos]
        table[name] = {
            "psnr": float(np.mean([float(psnr(o, p)) for o, p in zip(outs, photos)])),
            "ssim": float(np.mean([float(ssim(o, p)) for o, p in zip(outs, photos)])),
            "ab_mse": float(np.mean([float(ab_mse(o, p)) for o, p in zip(outs, photos)])),
            "colourfulness": float(np.mean([float(colorfulness(o)) for o in outs])),
        }
    table["ground truth"] = {"psnr": float("inf"), "ssim": 1.0, "ab_mse": 0.0,
                             "colourfulness": float(np.mean([float(colorfulness(p)) for p in photos]))}
    return {"metrics": table, "photos": len(photos)}


def style_markdown(result: dict) -> str:
    loss, sec = result["losses"], result["seconds"]
    return (f"{SECTION}\n\nMean over {result['photos']} held-out BSDS500 val photos at {result['size']} px "
            f"(`python bench/quality.py`), unweighted training losses (lower is better):\n\n"
            "| image | content loss | style loss | time per image |\n|---|---|---|---|\n"
            f"| the photo itself | {loss['photo']['content']:.3f} | {loss['photo']['style']:.3f} | - |\n"
            f"| this network | {loss['network']['content']:.3f} | {loss['network']['style']:.3f} "
            f"| {sec['network'] * 1000:.0f} ms |\n"
            f"| Gatys et al. ({result['gatys_steps']} L-BFGS steps) | {loss['gatys']['content']:.3f} "
            f"| {loss['gatys']['style']:.3f} | {sec['gatys']:.1f} s |\n\n"
            f"The network is {result['speedup']:.0f}x faster than the optimisation.\n")


def colorizer_markdown(result: dict) -> str:
    lines = [f"{SECTION}\n", f"Mean over {result['photos']} held-out BSDS500 val photos (`python bench/quality.py`):\n",
             "| method | PSNR (dB) | SSIM | ab MSE | colourfulness |", "|---|---|---|---|---|"]
    for name, m in result["metrics"].items():
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['ab_mse']:.1f} | {m['colourfulness']:.1f} |")
    return "\n".join(lines) + "\n"


def write_card(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(SECTION) + r".*?(?=\n## |\Z)", re.S)
    if pattern.search(text):
        text = pattern.sub(section.rstrip() + "\n", text)
    else:
        text = text.replace("\n## Speed", "\n" + section + "\n## Speed", 1) if "\n## Speed" in text \
            else text.rstrip() + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 photos at 192 px, 50 Gatys steps")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--size", type=int, default=256, help="longer side of the photos")
    parser.add_argument("--gatys-steps", type=int, default=300)
    parser.add_argument("--write-cards", action="store_true", help="update the models' cards")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="catalogue entries to evaluate (default: all); other results are kept")
    args = parser.parse_args(argv)
    if args.quick:
        args.photos, args.size, args.gatys_steps = 2, 192, 50
    torch.set_num_threads(max(1, torch.get_num_threads()))
    photos = load_photos(args.photos, args.size)
    vgg = load_vgg16()
    path = RESULTS / "quality.json"
    report: dict = json.loads(path.read_text()) if args.only and path.is_file() else {}
    for entry in catalog.load_catalog():
        if args.only and entry.name not in args.only:
            continue
        if entry.kind == "style":
            report[entry.name] = evaluate_style(entry, photos, vgg, args.gatys_steps)
            section = style_markdown(report[entry.name])
        else:
            report[entry.name] = evaluate_colorizer(entry, load_photos(max(args.photos, 8), 512))
            section = colorizer_markdown(report[entry.name])
        print(f"### {entry.display_name}\n{section}")
        if args.write_cards:
            write_card(entry.path / "README.md", section)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
