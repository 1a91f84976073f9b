#!/usr/bin/env python
"""The multi-style network: per-style quality, add-on styles, and frames per second.

    python bench/multistyle.py quality models/multistyle_rt [--compare NAME ...] [--photos 1] [--write-card]
    python bench/multistyle.py addon STYLE_IMAGE FOLDER... [--photos 1]
    python bench/multistyle.py speed models/multistyle_rt [--compare models/starry_night_rt] [--repeats 30]

``quality``: each style's closure against Gatys et al. (``bench/quality.py``'s measure: held-out
BSDS500 val photos at 256 px, 300 L-BFGS steps, references cached in bench/results/gatys/),
next to the catalogue's single-style networks of the same painting (``--compare`` entry names,
default: every catalogue entry whose name starts with the style's).
``addon``: the closure of style networks (an add-on folder, a full network trained for the same
time, ...) on one style image, e.g. a painting left out of the multi-style network's training.
``speed``: stylize() of a 640x480 uint8 frame (the webcam path), one style and a 50/50 blend,
interleaved with the ``--compare`` networks, min and median over ``--repeats``, at 1 and 2 threads.
Every command prints a JSON report and writes it to bench/results/multistyle-<command>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quality import SECTION, held_out_paths, load_photos, style_scores, write_card  # noqa: E402
from bench.run import stats  # noqa: E402
from fst import FastStyle, catalog, imageio  # noqa: E402
from fst.inference import from_uint8_array  # noqa: E402
from fst.vgg import load_vgg16  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def style_closure(stylize: Callable[[torch.Tensor], torch.Tensor], style_path: Path, photos, paths, vgg,
                  gatys_steps: int) -> dict[str, Any]:
    """Mean closure and content ratio against Gatys of ``stylize`` on ``photos`` for one style image."""
    style = from_uint8_array(np.asarray(imageio.read_image(style_path)))
    scores = style_scores(stylize, style, photos, paths, vgg, gatys_steps)
    return {"closure": scores["closure"], "content_ratio": scores["content_ratio"]}


def quality(args: argparse.Namespace) -> dict:
    photos, paths = load_photos(args.photos, args.size), held_out_paths(args.photos)
    vgg = load_vgg16()
    model = FastStyle.from_pretrained(args.model, device="cpu")
    previous = RESULTS / "multistyle-quality.json"
    report = {"photos": [p.name for p in paths], "size": args.size, "gatys_steps": args.gatys_steps, "styles": {}}
    if args.styles and previous.is_file():   # measuring some styles again: keep the others' figures
        report["styles"] = json.loads(previous.read_text()).get("styles", {})
    for name in args.styles or model.style_names:
        model.style_weights(name)   # an unknown name is a StyleError before any work
        style_path = Path(args.model) / "styles" / f"{name}.jpg"
        row = {"multistyle": style_closure(lambda x, n=name: model.stylize(x, style=n), style_path, photos, paths,
                                           vgg, args.gatys_steps)}
        for entry in catalog.load_catalog():
            wanted = entry.name in args.compare if args.compare else entry.name.startswith(name)
            if wanted and entry.kind == "style" and not entry.style:
                single = FastStyle.from_pretrained(entry.path, device="cpu")
                row[entry.name] = style_closure(single.stylize, style_path, photos, paths, vgg, args.gatys_steps)
        report["styles"][name] = row
        print(name, json.dumps(row), flush=True)
    if args.write_card:
        write_card(Path(args.model) / "README.md", quality_markdown(report))
    return report


def quality_markdown(report: dict) -> str:
    """The model card's quality section: each style's closure, beside single-style networks."""
    lines = [f"{SECTION}\n", f"Style closure against Gatys et al. ({report['gatys_steps']} L-BFGS steps; the share "
             "of the photo -> Gatys style-loss gap closed, on a log scale: 1 = as stylized as Gatys) and content loss "
             f"over Gatys's, on {len(report['photos'])} held-out BSDS500 val photo(s) at {report['size']} px "
             "(`python bench/multistyle.py quality`); single-style networks of the same painting beside it:\n",
             "| style | this network: closure (content) | single-style networks: closure (content) |", "|---|---|---|"]
    for name, row in report["styles"].items():
        ours = row["multistyle"]
        others = ", ".join(f"`{key}` {v['closure']:.2f} ({v['content_ratio']:.2f}x)" for key, v in row.items()
                           if key != "multistyle") or "-"
        lines.append(f"| `{name}` | {ours['closure']:.2f} ({ours['content_ratio']:.2f}x) | {others} |")
    return "\n".join(lines) + "\n"


def addon(args: argparse.Namespace) -> dict:
    photos, paths = load_photos(args.photos, args.size), held_out_paths(args.photos)
    vgg = load_vgg16()
    report = {"style": Path(args.style).name, "photos": [p.name for p in paths], "size": args.size, "networks": {}}
    for folder in args.folders:
        model = FastStyle.from_pretrained(folder, device="cpu")
        result = style_closure(model.stylize, Path(args.style), photos, paths, vgg, args.gatys_steps)
        result["steps"] = (model.config.training or {}).get("max_steps")
        report["networks"][str(folder)] = result
        print(folder, json.dumps(result), flush=True)
    return report


def frame_times(run: Callable[[], Any], repeats: int) -> list[float]:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def speed(args: argparse.Namespace) -> dict:
    frame = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    model = FastStyle.from_pretrained(args.model, device="cpu")
    names = model.style_names
    candidates = {f"{Path(args.model).name} ({names[0]})": lambda: model.stylize(frame, style=names[0])}
    if len(names) > 1:
        blend = {names[0]: 0.5, names[1]: 0.5}
        candidates[f"{Path(args.model).name} (50/50 blend)"] = lambda: model.stylize(frame, style=blend)
    for folder in args.compare:
        other = FastStyle.from_pretrained(folder, device="cpu")
        candidates[Path(folder).name] = lambda other=other: other.stylize(frame)
    report = {"size": "640x480", "repeats": args.repeats, "rounds": args.rounds, "results": {}}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        timings: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.rounds):     # interleaved: every candidate sees the same machine load
            for name, run in candidates.items():
                timings[name] += frame_times(run, args.repeats // args.rounds)
        for name, values in timings.items():
            s = stats(values)
            report["results"][f"{threads} thread{'s' if threads > 1 else ''}: {name}"] = {
                "min_ms": round(s["min"] * 1000, 1), "p50_ms": round(s["p50"] * 1000, 1),
                "fps_best": round(1 / s["min"], 1), "fps_p50": round(1 / s["p50"], 1)}
    return report


def main(argv: list[str] | None = None) -> int:
    from fst.settings import enable_huge_pages

    enable_huge_pages()   # measured as the app and the fst command run: with huge pages (unless set to 0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, handler in (("quality", quality), ("addon", addon), ("speed", speed)):
        p = sub.add_parser(name)
        p.set_defaults(handler=handler)
        if name == "addon":
            p.add_argument("style", type=Path, help="the style image the networks were trained on")
            p.add_argument("folders", type=Path, nargs="+", help="networks to measure")
        else:
            p.add_argument("model", type=Path, help="the multi-style network's folder")
            p.add_argument("--compare", nargs="*", default=[],
                           help="catalogue names (quality) or folders (speed) to measure beside it")
        p.add_argument("--photos", type=int, default=1, help="held-out photos (Gatys costs ~5 CPU-minutes each)")
        p.add_argument("--size", type=int, default=256, help="longer side of the photos")
        p.add_argument("--gatys-steps", type=int, default=300)
        p.add_argument("--repeats", type=int, default=30, help="speed: timed frames per candidate and thread count")
        p.add_argument("--rounds", type=int, default=3, help="speed: interleaved rounds")
        p.add_argument("--write-card", action="store_true", help="quality: put the table into the model's card")
        p.add_argument("--styles", nargs="+", default=None, help="quality: only these styles (the others' "
                       "figures are kept from the last report)")
    args = parser.parse_args(argv)
    report = args.handler(args)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"multistyle-{args.command}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
