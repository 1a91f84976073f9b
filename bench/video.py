#!/usr/bin/env python
"""Video benchmark (not a test): temporal stability of styled video, and end-to-end throughput.

    python bench/video.py                      # 30 frames per clip, 60 frames of 640x480 for throughput
    python bench/video.py --quick              # 12 frames per clip, 30 frames of 640x480: a few minutes
    python bench/video.py --update-benchmarks  # also rewrite its section of BENCHMARKS.md

1. Stability. Two clips of a held-out photo (bsds500/val, never trained on), 320x240:
   - "known motion": the camera pans 2 px right and 1 px down per frame: the true flow is
     known exactly, and the mask is the pixels that stay in view;
   - "real": a camera that pans and slowly zooms, a second photo moving across it the
     other way (occlusions), sensor noise and exposure flicker, encoded to H.264 and
     decoded back (fst.video.VideoSource). Flow and occlusions are measured on the input
     frames with OpenCV's Farneback flow (forward-backward consistency), here only.
   Each style network stylizes every frame (`FastStyle.stylize`, strength 1): "frame by
   frame"; then the run-time stabilization of `fst video` is applied (`FrameProcessor.track`
   on the inputs, `.stabilize` on the outputs, stability 0.4, 0.6 and 0.8). Reported: the temporal
   warping error (Lai et al. 2018; `fst.temporal.warping_error`, mean squared difference on a
   [0, 1] scale between each output and the previous one warped by the flow, x1000) and its
   ratio to frame by frame; and the style closure kept: log(L_photo / L_out) / log(L_photo /
   L_frame-by-frame), with L the VGG16 style loss against the painting (1 = as stylized as
   frame by frame).
2. Throughput. A 640x480 H.264 clip with AAC audio through `fst.video.process_video` with the
   webcam network (models/starry_night_rt), torch threads = cores - 1 (as `fst video` sets
   them): frames per second, decode + stylize + encode, with and without stabilization. Also
   the CPU cost of each stage measured one at a time, and the rate the three-thread pipeline
   would reach on two idle cores (the network on one, all other stages on the other):
   1000 / max(network ms, other stages ms).

Results: bench/results/video.json. Absolute figures depend on background load: the load
average is recorded at the start and the end.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # tests/video_clips.py: clip generation

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.webcam import add_results_args, machine_info, update_benchmarks  # noqa: E402
from fst import FastStyle  # noqa: E402
from fst.inference import from_uint8_array, resize_max_side  # noqa: E402
from fst.losses import LossWeights, style_grams, style_loss  # noqa: E402
from fst.motion import warp  # noqa: E402
from fst.temporal import warping_error  # noqa: E402
from fst.video import FrameProcessor, VideoOptions, VideoSource, process_video  # noqa: E402
from video_clips import panning_frames, scene_size, write_clip  # noqa: E402

HELD_OUT = ROOT.parent / "shared" / "data" / "photos" / "bsds500" / "val"
PHOTO, FOREGROUND = "103070.jpg", "101085.jpg"
SECTION = "## Video: temporal stability and throughput"
STYLES = ("starry_night_rt", "the_scream_rt", "starry_night")
STABILITIES = (0.4, 0.6, 0.8)
SIZE = (320, 240)
PAN = (2, 1)


# --------------------------------------------------------------------------- clips


def photo(name: str, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.open(HELD_OUT / name).convert("RGB").resize((width, height), Image.Resampling.LANCZOS))


def known_motion_clip(count: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Frames panning over a photo by PAN px per frame, the true flow and the in-view masks."""
    width, height = SIZE
    scene = photo(PHOTO, *scene_size(count, height, width, PAN))
    frames = panning_frames(count, height, width, step=PAN, scene=scene)
    flow = np.broadcast_to(np.asarray(PAN, np.float32), (height, width, 2))
    mask = np.ones((height, width), np.float32)
    return frames, [flow] * (count - 1), [mask] * (count - 1)


def real_clip(count: int, folder: Path, size: tuple[int, int] = SIZE, audio: bool = False) -> Path:
    """Pan + slow zoom over one photo, a second photo crossing the other way, noise and exposure flicker;
    written as H.264 (and AAC) so that the benchmark reads real codec output."""
    width, height = size
    rng = np.random.default_rng(0)
    scene = photo(PHOTO, width * 2, height * 2).astype(np.float32)
    patch = photo(FOREGROUND, width // 3, height // 3).astype(np.float32)
    frames = []
    for index in range(count):
        zoom = 1.0 + 0.004 * index
        crop_w, crop_h = width * 1.4 / zoom, height * 1.4 / zoom
        left, top = width * 0.2 + 3 * index, height * 0.2 + 1.5 * index
        view = Image.fromarray(scene.astype(np.uint8)).resize(
            (width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h))
        frame = np.asarray(view, np.float32).copy()
        x = int(width * 0.75 - 5 * index) % (width - patch.shape[1])
        y = height // 3 + int(6 * math.sin(index / 4))
        frame[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
        frame = frame * (1 + 0.02 * math.sin(index * 1.7)) + rng.normal(0, 3, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return write_clip(folder / f"real_{width}x{height}.mp4", frames, audio="aac" if audio else None,
                      options={"crf": "18"})


def decoded(path: Path) -> list[np.ndarray]:
    with VideoSource(path) as video:
        return [item.image for item in video.items() if hasattr(item, "image")]


def farneback(frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Backward flow (previous(x + flow) ~ current(x)) and forward-backward consistency masks."""
    import cv2

    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]

    def flow(a, b):
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.2, 0)

    flows, masks = [], []
    for previous, current in zip(gray, gray[1:]):
        backward, forward = flow(current, previous), flow(previous, current)
        tensor = torch.from_numpy(backward).permute(2, 0, 1).unsqueeze(0)
        forward_there, _ = warp(torch.from_numpy(forward).permute(2, 0, 1).unsqueeze(0), tensor)
        forward_there = forward_there[0].permute(1, 2, 0).numpy()
        mismatch = np.sum((backward + forward_there) ** 2, axis=-1)
        bound = 0.01 * (np.sum(backward ** 2, -1) + np.sum(forward_there ** 2, -1)) + 0.5
        flows.append(backward)
        masks.append((mismatch < bound).astype(np.float32))
    return flows, masks


# --------------------------------------------------------------------------- stability


def mean_warping_error(outputs: list[np.ndarray], flows: list[np.ndarray], masks: list[np.ndarray]) -> float:
    return 1000 * float(np.mean([warping_error(a, b, f, m) for a, b, f, m in zip(outputs, outputs[1:], flows, masks)]))


def stabilized(model: FastStyle, frames: list[np.ndarray], outputs: list[np.ndarray], stability: float):
    processor = FrameProcessor(model, stability=stability)
    return [processor.stabilize(out, processor.track(frame)) for frame, out in zip(frames, outputs)]


def style_closure(vgg, grams, weights: LossWeights, frames, reference, outputs) -> float:
    def loss(images):
        with torch.no_grad():
            return float(np.mean([float(style_loss(vgg(from_uint8_array(i), weights.style_layers), grams,
                                                   weights.style_layers)) for i in images[::3]]))

    photo_loss, reference_loss = loss(frames), loss(reference)
    return math.log(photo_loss / loss(outputs)) / math.log(photo_loss / reference_loss)


def stability_bench(models_dir: Path, count: int, folder: Path) -> dict[str, Any]:
    from fst.vgg import load_vgg16

    vgg = load_vgg16()
    weights = LossWeights()
    clips = {"known motion": known_motion_clip(count)}
    real = decoded(real_clip(count, folder))
    clips["real"] = (real, *farneback(real))
    rows = []
    for name in STYLES:
        if not (models_dir / name / "model.safetensors").is_file():
            continue
        model = FastStyle.from_pretrained(models_dir / name, device="cpu")
        painting = from_uint8_array(np.asarray(Image.open(models_dir / name / "style.jpg").convert("RGB")))
        grams = style_grams(vgg, resize_max_side(painting, max(SIZE)), weights.style_layers)
        for clip, (frames, flows, masks) in clips.items():
            started = time.perf_counter()
            outputs = [model.stylize(f) for f in frames]
            row = {"style": name, "arch": model.config.arch, "clip": clip, "frames": len(frames),
                   "ms_per_frame": 1000 * (time.perf_counter() - started) / len(frames),
                   "input": mean_warping_error(frames, flows, masks),
                   "frame_by_frame": mean_warping_error(outputs, flows, masks), "stabilized": {}}
            for stability in STABILITIES:
                started = time.perf_counter()
                stable = stabilized(model, frames, outputs, stability)
                milliseconds = 1000 * (time.perf_counter() - started) / len(frames)
                row["stabilized"][str(stability)] = {
                    "error": mean_warping_error(stable, flows, masks), "ms_per_frame": milliseconds,
                    "closure": style_closure(vgg, grams, weights, frames, outputs, stable)}
            rows.append(row)
            print(f"  {name:16s} {clip:13s} frame by frame {row['frame_by_frame']:.2f}  " + "  ".join(
                f"{s}: {v['error']:.2f} ({v['error'] / row['frame_by_frame']:.2f}x, closure {v['closure']:.3f})"
                for s, v in row["stabilized"].items()), flush=True)
    return {"rows": rows, "size": SIZE, "pan": PAN, "photo": PHOTO}


# --------------------------------------------------------------------------- throughput


def cpu_ms(fn: Callable[[], Any], repeat: int) -> float:
    """CPU time of the process per call (all its threads: x264 has its own), in ms; less sensitive to
    other jobs on the machine than wall time."""
    fn()
    started = time.process_time()
    for _ in range(repeat):
        fn()
    return 1000 * (time.process_time() - started) / repeat


def throughput_bench(models_dir: Path, count: int, folder: Path) -> dict[str, Any]:
    from fst.runtime import configure_threads
    from fst.video.sink import VideoWriter

    threads = configure_threads(reserve=1)
    model = FastStyle.from_pretrained(models_dir / "starry_night_rt", device="cpu")
    clip = real_clip(count, folder, size=(640, 480), audio=True)
    runs = {}
    for stability in (0.0, 0.6):
        report = process_video(clip, folder / "out.mp4", style=model, options=VideoOptions(stability=stability),
                               show_progress=False)
        runs[str(stability)] = {"fps": report.fps, "frames": report.frames, "seconds": report.seconds}
        print(f"  640x480, stability {stability}: {report.fps:.1f} frames/s ({report.frames} frames, audio "
              f"{report.audio})", flush=True)
    frames = decoded(clip)
    processor = FrameProcessor(model)
    motions = [processor.track(f) for f in frames]
    repeat = min(10, len(frames) - 2)
    index = iter(range(1, len(frames)))

    def decode_all() -> None:
        decoded(clip)

    writer_path = folder / "encode.mp4"
    stages = {
        "decode (H.264 -> RGB)": cpu_ms(decode_all, 1) / len(frames),
        "network (starry_night_rt)": cpu_ms(lambda: model.stylize(frames[1]), repeat),
        "motion estimation": cpu_ms(lambda: processor.track(frames[next(index) % len(frames)]), repeat),
        "stabilization (warp + blend)": cpu_ms(lambda: processor.stabilize(frames[2], motions[2]), repeat),
    }
    writer = VideoWriter(writer_path, (640, 480), Fraction(1, 25))
    pts = iter(range(10 ** 6))
    stages["encode (RGB -> H.264)"] = cpu_ms(lambda: writer.write(frames[3], next(pts)), repeat)
    writer.close()
    others = sum(v for k, v in stages.items() if not k.startswith("network"))
    projected = 1000 / max(stages["network (starry_night_rt)"], others)
    for name, value in stages.items():
        print(f"  {name:30s} {value:6.1f} ms/frame (CPU)")
    print(f"  projected on 2 idle cores: {projected:.1f} frames/s", flush=True)
    return {"torch_threads": threads, "runs": runs, "stages_cpu_ms": stages, "others_cpu_ms": others,
            "projected_fps": projected, "frames": len(frames)}


# --------------------------------------------------------------------------- report


def render(results: dict[str, Any]) -> str:
    lines = []
    stability = results.get("stability")
    if stability:
        width, height = stability["size"]
        lines += [f"Temporal warping error (x1000, mean squared difference on [0, 1] between each output and the "
                  f"previous one warped by the flow; lower is steadier) on {width}x{height} clips of "
                  f"{stability['photo']}; ratio to frame by frame; style closure kept (1 = as stylized as frame by "
                  f"frame):", "",
                  "| network | clip | input | frame by frame | " +
                  " | ".join(f"stabilized {s}" for s in STABILITIES) + " | network / stabilization ms per frame |",
                  "|---|---|---|---|" + "---|" * len(STABILITIES) + "---|"]
        for row in stability["rows"]:
            cells = [f"{v['error']:.2f} (**{v['error'] / row['frame_by_frame']:.2f}x**, closure {v['closure']:.3f})"
                     for v in row["stabilized"].values()]
            stab_ms = "/".join(f"{v['ms_per_frame']:.0f}" for v in row["stabilized"].values())
            lines.append(f"| {row['style']} | {row['clip']} | {row['input']:.2f} | {row['frame_by_frame']:.2f} | "
                         + " | ".join(cells) + f" | {row['ms_per_frame']:.0f} / {stab_ms} |")
    throughput = results.get("throughput")
    if throughput:
        runs = throughput["runs"]
        lines += ["", f"Throughput, 640x480 H.264 + AAC, starry_night_rt, {throughput['frames']} frames, "
                      f"{throughput['torch_threads']} torch thread(s), decode + stylize + encode "
                      f"(`fst.video.process_video`): **{runs['0.0']['fps']:.1f}** frames/s frame by frame, "
                      f"**{runs['0.6']['fps']:.1f}** with stabilization 0.6.", "",
                  "| stage (measured alone) | CPU ms per frame |", "|---|---|"]
        lines += [f"| {name} | {value:.1f} |" for name, value in throughput["stages_cpu_ms"].items()]
        lines += ["", f"On two idle cores the three threads would reach 1000 / max(network, "
                      f"{throughput['others_cpu_ms']:.0f} ms of the other stages) = "
                      f"**{throughput['projected_fps']:.1f}** frames/s (a projection from CPU times, not a "
                      f"measurement)."]
    return "\n".join(lines)


NOTES = """\
- The stabilization is a trade-off: the warped previous output carries last frame's strokes along
  the motion (less crawling texture), while each new frame's own strokes are mixed in with weight
  1 - stability. Texture contrast lost in the mix is restored band by band
  (`fst.temporal.restore_detail`); what is still lost is strokes that differ from frame to frame
  and are averaged. Training with `--stability_weight` (outputs of a photo and of its shifted,
  noised copy must agree) targets those; the shipped networks were trained without it.
- "input" is the warping error of the input frames themselves under the measured flow: the flow's
  own error (noise, exposure flicker, codec) on the "real" clip, 0 with known motion.
- The projection assumes the network alone on one core and decoding, motion estimation,
  stabilization and encoding on the other, as `process_video` runs them; wall-clock figures on a
  shared machine are below it."""


def benchmarks_section(results: dict[str, Any], command: str) -> str:
    m = results["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average_at_start"])
    load_end = ", ".join(f"{x:.1f}" for x in m.get("load_average_at_end", []))
    return (f"{SECTION}\n\nReproduce: `{command}` (`--update-benchmarks` rewrites this section). Results: "
            f"bench/results/video.json. OpenCV (Farneback flow) is used by this benchmark only.\n\n"
            f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}. Load average (1, 5, 15 min) {load} at "
            f"the start and {load_end} at the end: other jobs share the cores, so the wall-clock figures are "
            f"pessimistic.\n\n{render(results)}\n\n{NOTES}\n")


def main(argv: list[str] | None = None) -> int:
    from fst.settings import enable_huge_pages

    enable_huge_pages()   # measured as the app and the fst command run: with huge pages (unless set to 0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="12 frames per clip, 30 frames for throughput")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--no-stability", action="store_true")
    parser.add_argument("--no-throughput", action="store_true")
    add_results_args(parser, HERE / "results" / "video.json", SECTION)
    args = parser.parse_args(argv)
    if args.render is not None:
        return report(json.loads(args.render.read_text(encoding="utf-8")), args.update_benchmarks)
    models_dir = args.models_dir.expanduser().resolve()
    results: dict[str, Any] = {"machine": machine_info(), "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="fst-video-bench-") as folder:
        if not args.no_stability:
            torch.set_num_threads(1)
            print("stability:", flush=True)
            results["stability"] = stability_bench(models_dir, 12 if args.quick else 30, Path(folder))
        if not args.no_throughput:
            print("throughput:", flush=True)
            results["throughput"] = throughput_bench(models_dir, 30 if args.quick else 60, Path(folder))
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print()
    return report(results, args.update_benchmarks)


def report(results: dict[str, Any], update: bool) -> int:
    """Print the tables; with ``update``, write them into BENCHMARKS.md."""
    print(render(results))
    if update:
        command = "python bench/video.py" + (" --quick" if results.get("quick") else "")
        update_benchmarks(ROOT / "BENCHMARKS.md", benchmarks_section(results, command), SECTION)
        print("updated BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
