#!/usr/bin/env python
"""Figures of the shipped networks on held-out photos (BSDS500 val), written to docs/quality/.

- one per style: the photo | Gatys et al. (300 L-BFGS steps) | the network | the network at
  brush size 2 (on a 512 px copy, shown at the same size);
- the colorizer: gray | ours | the original, for photos with sky, vegetation and people.

    python docs/make_quality_figures.py [--only NAME ...]

Gatys results are shared with bench/quality.py (cached in bench/results/gatys/; the first
run pays ~5 minutes of CPU per style).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality import gatys_reference, held_out_paths, load_photos  # noqa: E402
from fst import Colorizer, FastStyle, catalog, imageio  # noqa: E402
from fst.inference import from_uint8_array, resize_max_side  # noqa: E402
from fst.losses import LossWeights  # noqa: E402
from fst.metrics import gray_baseline  # noqa: E402
from fst.vgg import load_vgg16  # noqa: E402

OUT = ROOT / "docs" / "quality"
SIZE = 256
#: Held-out photos for the colorizer figure: sky, vegetation, skin, and snow (no colour cast).
COLORIZER_PHOTOS = ("126007.jpg", "147091.jpg", "157055.jpg", "101087.jpg", "167062.jpg")
LABEL_HEIGHT = 18


def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))


def grid(rows: list[list[torch.Tensor]], labels: list[str]) -> Image.Image:
    """Images of one size in rows, with a label over each column."""
    height, width = rows[0][0].shape[-2:]
    sheet = Image.new("RGB", (width * len(labels), LABEL_HEIGHT + height * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, label in enumerate(labels):
        draw.text((column * width + 4, 3), label, fill="black")
    for row_index, row in enumerate(rows):
        for column, image in enumerate(row):
            sheet.paste(to_pil(image), (column * width, LABEL_HEIGHT + row_index * height))
    return sheet


def style_figure(entry, vgg) -> Path:
    model = FastStyle.from_pretrained(entry.path)
    photo, path = load_photos(1, SIZE)[0], held_out_paths(1)[0]
    style = resize_max_side(from_uint8_array(np.asarray(imageio.read_image(entry.path / "style.jpg"))), SIZE)
    gatys, _ = gatys_reference(style, photo, path, 300, LossWeights(), vgg)
    large = load_photos(1, 2 * SIZE)[0]
    brush = torch.nn.functional.interpolate(model.stylize(large, style_scale=2.0, detail=0.5), size=photo.shape[-2:],
                                            mode="bilinear", antialias=True, align_corners=False)
    figure = grid([[photo, gatys, model.stylize(photo), brush]],
                  ["held-out photo", "Gatys (300 steps)", "this network", "brush size 2 (at 512 px)"])
    target = OUT / f"{entry.name}.jpg"
    figure.save(target, quality=90)
    return target


def colorizer_figure(entry) -> Path:
    model = Colorizer.from_pretrained(entry.path)
    folder = held_out_paths(1, 0)[0].parent
    rows = []
    for name in COLORIZER_PHOTOS:
        photo = resize_max_side(from_uint8_array(np.asarray(imageio.read_image(folder / name))), SIZE)
        rows.append([gray_baseline(photo), model.colorize(photo), photo])
    figure = grid(rows, ["gray (input)", "colorized", "original"])
    target = OUT / f"{entry.name}.jpg"
    figure.save(target, quality=90)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="catalogue entries to draw")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    vgg = None
    for entry in catalog.load_catalog():
        if args.only and entry.name not in args.only:
            continue
        if entry.kind == "colorizer":
            print(colorizer_figure(entry))
        elif not entry.name.endswith("_rt") and not entry.style:   # webcam and multi-style networks: not drawn
            vgg = vgg or load_vgg16()
            print(style_figure(entry, vgg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
