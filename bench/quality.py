#!/usr/bin/env python
"""Quality of the embedded default networks on held-out photos (bsds500/val: never trained on).

Styles, per photo: content loss and style loss (the training losses, unweighted) of
  - the unstyled photo (the starting point),
  - the feed-forward network's output,
  - the Gatys et al. optimisation result (L-BFGS, same loss, initialised from the photo;
    cached in bench/results/gatys/, so a rerun only pays for the networks),
summarised as the style *closure* (the share of the photo -> Gatys style-loss gap the
network closes, on a log scale: 1 = as stylized as Gatys, 0 = the photo), the content
ratio (network / Gatys content loss), per-layer closure, the periodic-artefact score of
the output at 512 px (fst.metrics.periodic_peak; a photo scores ~1) and the time each takes.
Colorizer: PSNR / SSIM / colourfulness / ab-MSE against ground truth, next to the two
baselines "keep it gray" and "mean ab of the training set", and the mean a*b* cast of its
outputs on neutral scenes (held-out photos whose true colours are nearly gray).

    python bench/quality.py [--quick] [--write-cards] [--only NAME ...]

`--write-cards` puts the figures into each model's card (models/<name>/README.md).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fst import Colorizer, FastStyle, catalog, imageio  # noqa: E402
from fst.gatys import optimize  # noqa: E402
from fst.inference import from_uint8_array, resize_max_side, to_uint8_array  # noqa: E402
from fst.losses import LossWeights, content_loss, style_grams, style_loss  # noqa: E402
from fst.color import rgb_to_lab  # noqa: E402
from fst.losses import gram_matrix  # noqa: E402
from fst.metrics import (ab_mse, colorfulness, gray_baseline, mean_ab_baseline, periodic_peak, psnr,  # noqa: E402
                         ssim)
from fst.vgg import load_vgg16  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HELD_OUT = DATA / "photos" / "bsds500" / "val"
RESULTS = Path(__file__).resolve().parent / "results"
#: Style photos start after the colorizer's neutral-scene search range, at a fixed offset.
FIRST_STYLE_PHOTO = 10
#: Held-out photos used as styles of the any-painting network (after the evaluated ones).
PHOTO_STYLES_FIRST = 60
SECTION = "## Quality on held-out photos"


def held_out_paths(count: int, first: int = FIRST_STYLE_PHOTO) -> list[Path]:
    return sorted(HELD_OUT.glob("*.jpg"))[first:first + count]


def load_photos(count: int, size: int, first: int = FIRST_STYLE_PHOTO) -> list[torch.Tensor]:
    return [resize_max_side(from_uint8_array(np.asarray(imageio.read_image(p))), size)
            for p in held_out_paths(count, first)]


def losses(vgg, image: torch.Tensor, content: torch.Tensor, grams, weights: LossWeights) -> dict[str, Any]:
    """Content loss, style loss and the per-layer style losses of ``image``."""
    layers = list(dict.fromkeys([weights.content_layer, *weights.style_layers]))
    with torch.no_grad():
        feats, target = vgg(image, layers), vgg(content, [weights.content_layer])
        per_layer = [float(((gram_matrix(feats[layer]) - grams[layer]) ** 2).sum() / grams[layer].pow(2).sum())
                     for layer in weights.style_layers]
        return {"content": float(content_loss(feats[weights.content_layer], target[weights.content_layer])),
                "style": float(style_loss(feats, grams, weights.style_layers)), "per_layer": per_layer}


def closure(photo: float, network: float, gatys: float) -> float:
    """Share of the photo -> Gatys style-loss gap the network closes, on a log scale."""
    return math.log(photo / network) / math.log(photo / gatys) if photo > gatys else float("nan")


def gatys_reference(style: torch.Tensor, photo: torch.Tensor, path: Path, steps: int,
                    weights: LossWeights, vgg) -> tuple[torch.Tensor, float]:
    """The Gatys result for (style, photo), from the cache or optimised now (then cached). The cache
    is keyed by the style's pixels, so the networks of one painting (a style and its webcam
    network) share their references."""
    digest = hashlib.sha256(to_uint8_array(style).tobytes()).hexdigest()[:12]
    cache = RESULTS / "gatys" / f"style-{digest}-{path.stem}-{max(photo.shape[-2:])}px-{steps}.png"
    if cache.is_file():
        return from_uint8_array(np.asarray(imageio.read_image(cache))), float("nan")
    start = time.perf_counter()
    image = optimize(photo, style, steps=steps, weights=weights, vgg=vgg).image
    seconds = time.perf_counter() - start
    cache.parent.mkdir(parents=True, exist_ok=True)
    imageio.save_image(image, cache)
    return image, seconds


def style_scores(stylize, style: torch.Tensor, photos, paths, vgg, gatys_steps: int) -> dict:
    """Losses, closure and content ratio of ``stylize`` (photo -> styled) against Gatys with ``style``."""
    weights = LossWeights()
    style = resize_max_side(style, max(photos[0].shape[-2:]))
    grams = style_grams(vgg, style, weights.style_layers)
    rows: dict[str, list] = {"photo": [], "network": [], "gatys": []}
    times: dict[str, list] = {"network": [], "gatys": []}
    for photo, path in zip(photos, paths):
        rows["photo"].append(losses(vgg, photo, photo, grams, weights))
        start = time.perf_counter()
        styled = stylize(photo)
        times["network"].append(time.perf_counter() - start)
        rows["network"].append(losses(vgg, styled, photo, grams, weights))
        reference, seconds = gatys_reference(style, photo, path, gatys_steps, weights, vgg)
        if math.isfinite(seconds):
            times["gatys"].append(seconds)
        rows["gatys"].append(losses(vgg, reference, photo, grams, weights))
    mean = {k: {m: float(np.mean([r[m] for r in v])) for m in ("content", "style")} for k, v in rows.items()}
    closures = [closure(p["style"], n["style"], g["style"]) for p, n, g in zip(*rows.values())]
    layer_closures = np.nanmean([[closure(*values) for values in zip(p["per_layer"], n["per_layer"], g["per_layer"])]
                                 for p, n, g in zip(*rows.values())], axis=0)
    content_ratio = float(np.mean([n["content"] / g["content"] for n, g in zip(rows["network"], rows["gatys"])]))
    seconds = {k: float(np.mean(v)) if v else float("nan") for k, v in times.items()}
    return {"losses": mean, "closure": float(np.nanmean(closures)), "layer_closure": layer_closures.tolist(),
            "content_ratio": content_ratio, "seconds": seconds,
            "speedup": seconds["gatys"] / max(seconds["network"], 1e-9),
            "photos": len(photos), "gatys_steps": gatys_steps, "size": int(max(photos[0].shape[-2:]))}


def evaluate_style(entry, photos, paths, vgg, gatys_steps: int) -> dict:
    model = FastStyle.from_pretrained(entry.path, device="cpu")
    style = from_uint8_array(np.asarray(imageio.read_image(entry.path / "style.jpg")))
    result = style_scores(model.stylize, style, photos, paths, vgg, gatys_steps)
    large = resize_max_side(load_photos(1, 512)[0], 512)
    return {**result, "artefacts_512px": float(periodic_peak(model.stylize(large))),
            "photo_artefacts_512px": float(periodic_peak(large))}


def evaluate_arbitrary(entry, photos, paths, vgg, gatys_steps: int, paintings: int, photo_styles: int) -> dict:
    """The any-painting network with each of ``paintings`` paintings of shared/data/styles (none
    is used in its training) and ``photo_styles`` held-out photos (not the evaluated ones) as styles."""
    from fst import ArbitraryStyle

    model = ArbitraryStyle.from_pretrained(entry.path, device="cpu")
    styles = {f"painting-{p.stem}": p for p in sorted((DATA / "styles").glob("*.jpg"))[:paintings]}
    styles.update({f"photo-{p.stem}": p for p in held_out_paths(photo_styles, first=PHOTO_STYLES_FIRST)})
    per_style = {}
    for name, path in styles.items():
        style = from_uint8_array(np.asarray(imageio.read_image(path)))
        # The style image at the photos' scale, as for the Gatys reference.
        stylize = functools.partial(model.stylize, style=style, style_size=max(photos[0].shape[-2:]))
        per_style[name] = style_scores(stylize, style, photos, paths, vgg, gatys_steps)
        print(f"  {name}: closure {per_style[name]['closure']:.2f}, content {per_style[name]['content_ratio']:.2f}x")
    large = resize_max_side(load_photos(1, 512)[0], 512)
    first = next(iter(styles.values()))
    return {"styles": per_style, "closure": float(np.mean([r["closure"] for r in per_style.values()])),
            "content_ratio": float(np.mean([r["content_ratio"] for r in per_style.values()])),
            "artefacts_512px": float(periodic_peak(model.stylize(large, style=first))),
            "photo_artefacts_512px": float(periodic_peak(large)), "photos": len(photos),
            "gatys_steps": gatys_steps, "size": int(max(photos[0].shape[-2:]))}


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
    neutral = [p for p in photos if chroma(p) < NEUTRAL_CHROMA]
    cast = {"photos": len(neutral),
            "ours": mean_ab_of([model.colorize(p) for p in neutral]) if neutral else [float("nan")] * 2,
            "truth": mean_ab_of(neutral) if neutral else [float("nan")] * 2}
    return {"metrics": table, "photos": len(photos), "neutral_cast": cast}


#: A held-out photo whose mean chroma C*ab is below this counts as a neutral scene (snow, fog, stone).
NEUTRAL_CHROMA = 6.0


def chroma(rgb: torch.Tensor) -> float:
    """Mean chroma C*ab of an sRGB image."""
    ab = rgb_to_lab(rgb.double())[:, 1:]
    return float(ab.pow(2).sum(dim=1).sqrt().mean())


def mean_ab_of(images: list[torch.Tensor]) -> list[float]:
    """Mean (a*, b*) over images (equal weight per image)."""
    return [float(np.mean([float(rgb_to_lab(i.double())[:, c].mean()) for i in images])) for c in (1, 2)]





def style_markdown(result: dict) -> str:
    loss, sec = result["losses"], result["seconds"]
    gatys_time = f"{sec['gatys']:.1f} s" if math.isfinite(sec["gatys"]) else "(cached)"
    layers = " / ".join(f"{v:.2f}" for v in result["layer_closure"])
    speedup = f" The network is {result['speedup']:.0f}x faster than the optimisation." \
        if math.isfinite(result["speedup"]) else ""
    return (f"{SECTION}\n\nMean over {result['photos']} held-out BSDS500 val photos at {result['size']} px "
            f"(`python bench/quality.py`), unweighted training losses (lower is better):\n\n"
            "| image | content loss | style loss | time per image |\n|---|---|---|---|\n"
            f"| the photo itself | {loss['photo']['content']:.3f} | {loss['photo']['style']:.3f} | - |\n"
            f"| this network | {loss['network']['content']:.3f} | {loss['network']['style']:.3f} "
            f"| {sec['network'] * 1000:.0f} ms |\n"
            f"| Gatys et al. ({result['gatys_steps']} L-BFGS steps) | {loss['gatys']['content']:.3f} "
            f"| {loss['gatys']['style']:.3f} | {gatys_time} |\n\n"
            f"Style closure (share of the photo -> Gatys style-loss gap closed, log scale): "
            f"**{result['closure']:.2f}** (per layer relu1_2 / relu2_2 / relu3_3 / relu4_3: {layers}); "
            f"content loss {result['content_ratio']:.2f}x Gatys's. Periodic-artefact score at 512 px: "
            f"{result['artefacts_512px']:.1f} (the photo: {result['photo_artefacts_512px']:.1f}).{speedup}\n")


def arbitrary_markdown(result: dict) -> str:
    lines = [f"{SECTION}\n", f"Mean over {result['photos']} held-out BSDS500 val photos at {result['size']} px, against "
             f"Gatys et al. ({result['gatys_steps']} L-BFGS steps) with the same style image (`python bench/quality.py`). "
             "No painting or photo used as a style here was seen in training.\n",
             "| style | closure | content vs Gatys | time per image |", "|---|---|---|---|"]
    for name, r in result["styles"].items():
        lines.append(f"| {name} | {r['closure']:.2f} | {r['content_ratio']:.2f}x | {r['seconds']['network'] * 1000:.0f} ms |")
    lines.append(f"| **mean** | **{result['closure']:.2f}** | **{result['content_ratio']:.2f}x** | |")
    lines.append(f"\nPeriodic-artefact score at 512 px: {result['artefacts_512px']:.1f} "
                 f"(the photo: {result['photo_artefacts_512px']:.1f}).")
    return "\n".join(lines) + "\n"


def colorizer_markdown(result: dict) -> str:
    lines = [f"{SECTION}\n", f"Mean over {result['photos']} held-out BSDS500 val photos (`python bench/quality.py`):\n",
             "| method | PSNR (dB) | SSIM | ab MSE | colourfulness |", "|---|---|---|---|---|"]
    for name, m in result["metrics"].items():
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['ab_mse']:.1f} | {m['colourfulness']:.1f} |")
    cast = result.get("neutral_cast")
    if cast and cast["photos"]:
        lines.append(f"\nColour cast on neutral scenes: on the {cast['photos']} nearly gray scenes among them (mean chroma below "
                     f"{NEUTRAL_CHROMA:g}), the outputs' mean a*, b* is {cast['ours'][0]:+.1f}, {cast['ours'][1]:+.1f} "
                     f"(the originals': {cast['truth'][0]:+.1f}, {cast['truth'][1]:+.1f}).")
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
    parser.add_argument("--colorizer-photos", type=int, default=40, help="held-out photos for the colorizer")
    parser.add_argument("--paintings", type=int, default=8, help="paintings as styles of the any-painting network")
    parser.add_argument("--photo-styles", type=int, default=2, help="held-out photos as styles of that network")
    parser.add_argument("--write-cards", action="store_true", help="update the models' cards")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="catalogue entries to evaluate (default: all); other results are kept")
    args = parser.parse_args(argv)
    if args.quick:
        args.photos, args.size, args.gatys_steps, args.colorizer_photos = 2, 192, 50, 8
        args.paintings, args.photo_styles = 2, 1
    torch.set_num_threads(max(1, torch.get_num_threads()))
    photos, paths = load_photos(args.photos, args.size), held_out_paths(args.photos)
    vgg = load_vgg16()
    path = RESULTS / "quality.json"
    report: dict = json.loads(path.read_text()) if args.only and path.is_file() else {}
    for entry in catalog.load_catalog():
        if (args.only and entry.name not in args.only) or entry.style:   # multi-style: bench/multistyle.py
            continue
        if entry.kind == "style":
            report[entry.name] = evaluate_style(entry, photos, paths, vgg, args.gatys_steps)
            section = style_markdown(report[entry.name])
        elif entry.kind == "arbitrary":
            report[entry.name] = evaluate_arbitrary(entry, photos, paths, vgg, args.gatys_steps, args.paintings,
                                                    args.photo_styles)
            section = arbitrary_markdown(report[entry.name])
        else:
            report[entry.name] = evaluate_colorizer(entry, load_photos(args.colorizer_photos, 512, first=0))
            section = colorizer_markdown(report[entry.name])
        print(f"### {entry.display_name}\n{section}")
        if args.write_cards:
            write_card(entry.path / "README.md", section)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
