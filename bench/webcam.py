#!/usr/bin/env python
"""Webcam benchmark (not a test): flicker with and without the temporal blend, and the app's
webcam tab measured end to end in headless Chromium.

    python bench/webcam.py                      # 20 frames per style, two 15 s streams
    python bench/webcam.py --quick              # 10 frames, two 8 s streams: < 2 minutes
    python bench/webcam.py --update-benchmarks  # also rewrite its section of BENCHMARKS.md

1. Flicker. A held-out photo (bsds500/val, never trained on) cropped to 320x240 is repeated
   with Gaussian sensor noise (``fst.temporal.noisy_static_frames``, std 4), i.e. a static
   scene filmed by a webcam. Every embedded style network in the catalogue (whatever is in
   the models folder: networks still training are simply absent) stylizes each frame the way
   the app does (``FastStyle.stylize``, strength 1). ``fst.temporal.flicker`` (mean absolute
   difference between consecutive frames, 0..255) is reported for the input frames, the raw
   outputs, and the outputs after ``fst.temporal.smoothed`` (the app's ``temporal_blend``)
   at alpha 0.3 / 0.5 / 0.7, with ratios to the raw outputs. "expected" is the steady-state
   ratio of an exponential moving average on independent frame noise, (1 - a) / sqrt(1 + a).
2. End to end. ``python app.py --no-hub`` on the real models folder (GRADIO_TEMP_DIR in a
   temporary folder, analytics off) and headless Chromium whose fake camera plays a generated
   640x480 .y4m (``tests/y4m.py``). The webcam tab streams with its default settings; after a
   warm-up, styled frames are counted for ``--seconds`` at the default processing resolution,
   then again after setting the resolution slider to 320 (320x240 frames).
   - fps: changes of the output image's src per second (a MutationObserver in the page);
     "displayed": those whose image finished loading before the next one replaced it.
   - latency (browser, displayed frames): from the POST that uploaded a camera frame to the
     styled frame's ``load`` in the page. Gradio streams the latest frame only (uploads that arrive while the
     server is busy replace each other), so the frame behind each output is reconstructed
     from the upload and output times: the newest upload before the previous output, or else
     the first upload after it.
   - latency (app): the "ms per frame" the tab shows (server-side decode, downscale, network
     and blend; an exponential moving average), sampled at every output.
   The CPU thread count is the app's footer ("CPU (1 thread)"), the network the tab's stats.

Results: bench/results/webcam.json (``--output`` to change). Absolute figures depend heavily
on background load: the machine's load average is recorded at the start and the end.
"""
from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # tests/y4m.py (fake camera file), tests/app_helpers.py (app process)

HELD_OUT = ROOT.parent / "shared" / "data" / "photos" / "bsds500" / "val"
DEFAULT_PHOTO = "103070.jpg"          # the first landscape photo of bsds500/val (sorted)
CHROMIUM = Path("/usr/bin/chromium")
SECTION = "## Webcam: flicker and end-to-end frame rate"
ALPHAS = (0.3, 0.5, 0.7)
FRAME_SIZE = (320, 240)               # width, height of the flicker frames
CAMERA_SIZE = (640, 480)              # the fake camera
STREAM_RESOLUTION = 320               # second end-to-end setting: longer side 320 -> 320x240 frames
RESOLUTION_LABEL = "Processing resolution (longer side, px)"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

# Installed before any page script: timestamps (performance.now(), ms) of the frame uploads,
# of every change of the styled image's src, of its load, and of the stats text.
INSTRUMENT = r"""
(() => {
  const log = window.__fstWebcam = {posts: [], outs: [], loads: [], stats: []};
  const fetch = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : (input && input.url) || String(input);
    const method = (init && init.method) || (input && input.method) || 'GET';
    if (method.toUpperCase() === 'POST' && /\/stream\/[^/?]+$/.test(url.split('?')[0])) {
      log.posts.push(performance.now());
    }
    return fetch.apply(this, arguments);
  };
  let lastSrc = null, lastStats = null;
  new MutationObserver(() => {
    const now = performance.now();
    const img = document.querySelector('#webcam-output img');
    const src = img ? img.getAttribute('src') : null;
    if (src && src !== lastSrc) { lastSrc = src; log.outs.push([now, src]); }
    const stats = document.querySelector('#webcam-stats');
    const text = stats ? stats.innerText : null;
    if (text !== null && text !== lastStats) { lastStats = text; log.stats.push([now, text]); }
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true,
                        attributeFilter: ['src']});
  document.addEventListener('load', (event) => {
    const el = event.target;
    if (el && el.tagName === 'IMG' && el.closest('#webcam-output')) {
      log.loads.push([performance.now(), el.getAttribute('src'), el.naturalWidth, el.naturalHeight]);
    }
  }, true);
})();
"""

STATS_RE = re.compile(r"(?:(?P<network>\S+) · )?(?P<fps>[\d.]+) fps · (?P<ms>\d+) ms per frame · (?P<frames>\d+) frames")


# =============================================================================== helpers

def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {"n": len(values), "min": min(values) if values else None, "p50": percentile(values, 50),
            "p95": percentile(values, 95), "max": max(values) if values else None}


def machine_info() -> dict[str, Any]:
    import torch

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform(),
            "load_average_at_start": list(os.getloadavg())}


def held_out_photo(path: Path):
    """The photo centre-cropped to 4:3 and resized to 320x240, as an HxWx3 uint8 array."""
    import numpy as np
    from PIL import Image, ImageOps

    from fst import imageio

    image = imageio.read_image(path)
    return np.asarray(ImageOps.fit(image, FRAME_SIZE, Image.Resampling.LANCZOS))


def style_entries(models_dir: Path):
    from fst.catalog import load_catalog

    return [e for e in load_catalog(models_dir / "catalog.json") if e.kind == "style"]


def ema_expected_ratio(alpha: float) -> float:
    """Steady-state flicker ratio of y_t = (1-a) x_t + a y_(t-1) on independent frame noise."""
    return (1 - alpha) / (1 + alpha) ** 0.5


# =============================================================================== 1. flicker

def flicker_bench(models_dir: Path, photo_path: Path, count: int, sigma: float, alphas: tuple[float, ...]) -> dict:
    from fst import FastStyle
    from fst.app_backend import configure_torch
    from fst.hub import resolve_device
    from fst.temporal import flicker, noisy_static_frames, smoothed

    device = resolve_device(None)
    threads = configure_torch(device)            # what the app does: 1 thread on a 2-core CPU
    frames = noisy_static_frames(held_out_photo(photo_path), count, sigma=sigma, seed=0)
    result = {"photo": str(photo_path.relative_to(ROOT.parent)) if photo_path.is_relative_to(ROOT.parent)
              else str(photo_path), "size": f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]}", "frames": count, "sigma": sigma,
              "device": str(device), "torch_threads": threads, "alphas": list(alphas),
              "expected_ratio": {str(a): ema_expected_ratio(a) for a in alphas},
              "input_flicker": flicker(frames), "styles": [], "skipped": []}
    for entry in style_entries(models_dir):
        try:
            model = FastStyle.from_pretrained(entry.path, device=device)
        except Exception as exc:  # noqa: BLE001 - a network still being copied: report and go on
            result["skipped"].append({"name": entry.name, "reason": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        model.stylize(frames[0])                 # warm-up (allocations, NNPACK plans)
        outputs, times = [], []
        for frame in frames:
            started = time.perf_counter()
            outputs.append(model.stylize(frame))
            times.append((time.perf_counter() - started) * 1000)
        raw = flicker(outputs)
        blended = {str(a): flicker(smoothed(outputs, a)) for a in alphas}
        result["styles"].append({
            "name": entry.name, "arch": model.config.arch, "raw": raw, "blended": blended,
            "ratio": {a: (v / raw if raw else None) for a, v in blended.items()},
            "ms_per_frame": summary(times)})
        print(f"  {entry.name:16s} raw {raw:6.2f}  " + "  ".join(
            f"a={a}: {v:5.2f} ({v / raw:.2f}x)" for a, v in blended.items()) +
            f"  [{min(times):.0f} ms/frame min]", flush=True)
        del model
    return result


# =============================================================================== 2. end to end

def optional(read):
    """``read()``, or None when it fails (UI details that are only recorded)."""
    try:
        return read()
    except Exception:  # noqa: BLE001
        return None


def frame_sources(posts: list[float], outs: list[float]) -> list[int | None]:
    """For each output, the index of the upload it was made from (see the module docstring)."""
    sources: list[int | None] = []
    previous = -1
    for k, out in enumerate(outs):
        boundary = outs[k - 1] if k else float("-inf")
        newest = bisect.bisect_left(posts, boundary) - 1
        index = newest if newest > previous else previous + 1
        if index >= len(posts) or posts[index] >= out:
            sources.append(None)
            continue
        sources.append(index)
        previous = index
    return sources


def analyse_window(log: dict, start: float, end: float) -> dict[str, Any]:
    """fps and latencies of the outputs whose src changed in [start, end] (page ms)."""
    posts = sorted(log["posts"])
    outs = log["outs"]
    out_times = [t for t, _ in outs]
    loaded: dict[str, list[tuple[float, int, int]]] = {}
    for t, src, width, height in sorted(log["loads"]):
        loaded.setdefault(src, []).append((t, width, height))   # a src can repeat (identical frames)
    sources = frame_sources(posts, out_times)
    in_window = [k for k, t in enumerate(out_times) if start <= t <= end]
    latencies, sizes, display_delays = [], {}, []
    for k in in_window:
        load = next((entry for entry in loaded.get(outs[k][1], []) if entry[0] >= out_times[k]), None)
        if load is None:   # replaced by the next frame before its image loaded
            continue
        t_load, width, height = load
        sizes[f"{width}x{height}"] = sizes.get(f"{width}x{height}", 0) + 1
        display_delays.append(t_load - out_times[k])
        if sources[k] is not None:
            latencies.append(t_load - posts[sources[k]])
    intervals = [out_times[b] - out_times[a] for a, b in itertools.pairwise(in_window)]
    uploads = [t for t in posts if start <= t <= end]
    app_ms, app_fps, network, frames_seen = [], [], None, []
    for t, text in log["stats"]:
        match = STATS_RE.search(text)
        if match and start <= t <= end:
            app_ms.append(float(match["ms"]))
            app_fps.append(float(match["fps"]))
            frames_seen.append(int(match["frames"]))
            network = match["network"] or network
    seconds = (end - start) / 1000
    return {
        "seconds": seconds, "frames": len(in_window), "fps": len(in_window) / seconds,
        "displayed": sum(sizes.values()), "displayed_per_s": sum(sizes.values()) / seconds,
        "display_delay_ms": summary(display_delays),
        "uploads": len(uploads), "uploads_per_s": len(uploads) / seconds,
        "interval_ms": summary(intervals), "latency_ms": summary(latencies),
        "app_latency_ms": summary(app_ms), "app_fps_last": app_fps[-1] if app_fps else None,
        "app_frames": (frames_seen[-1] - frames_seen[0] + 1) if frames_seen else 0,
        "network": network, "output_sizes": sizes,
    }


def e2e_bench(models_dir: Path, seconds: float, warmup: float, chromium: Path) -> dict[str, Any]:
    from app_helpers import AppProcess
    from y4m import moving_pattern, write_y4m

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright is not installed (pip install -r requirements-dev.txt)"}
    if not chromium.exists():
        return {"skipped": f"{chromium} not found (apt-get install -y chromium)"}

    result: dict[str, Any] = {"camera": f"{CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} .y4m, 15 fps, moving square",
                              "seconds_per_setting": seconds, "warmup_s": warmup, "settings": []}
    workdir = Path(tempfile.mkdtemp(prefix="fst-webcam-bench-"))
    app = None
    try:
        camera = write_y4m(workdir / "camera.y4m", moving_pattern(30, *CAMERA_SIZE), fps=15)
        app = AppProcess(models_dir, workdir, args=["--no-hub"]).wait_ready(timeout=240)
        result["app_ready_s"] = time.monotonic() - app.started
        print(f"  app ready after {result['app_ready_s']:.1f} s on port {app.port}", flush=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(chromium), args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={camera}"])
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
                page.set_default_timeout(60_000)
                page.add_init_script(INSTRUMENT)
                page.goto(app.url)
                page.wait_for_selector("#image-input")
                result["footer"] = page.locator("#footer").inner_text().strip()
                page.get_by_role("tab", name="Webcam").click()
                resolution_box = page.get_by_label(f"number input for {RESOLUTION_LABEL}")
                result["default_resolution"] = int(float(resolution_box.input_value()))
                # the tab's other settings, recorded as shown (optional: never fail the run on them)
                result["network_choice"] = optional(lambda: page.evaluate(
                    "Array.from(document.querySelectorAll('input[type=radio]:checked')).map(i => i.value)"
                    ".find(v => ['auto', 'webcam', 'full'].includes(v)) || null"))
                result["blend"] = optional(lambda: float(page.get_by_label("number input for Temporal smoothing")
                                                         .input_value(timeout=5000)))
                result["style"] = optional(lambda: page.locator("#webcam-style input").input_value(timeout=5000))
                page.locator("#webcam-input").get_by_text("Click to Access Webcam").click()
                page.wait_for_selector("#webcam-input video:not(.hide)")
                page.wait_for_function("document.querySelector('#webcam-input video').videoWidth > 0")
                result["camera_frames"] = page.evaluate(
                    "(() => { const v = document.querySelector('#webcam-input video');"
                    " return `${v.videoWidth}x${v.videoHeight}`; })()")
                page.locator("#webcam-input button[aria-label='capture photo']").click()
                page.wait_for_selector("#webcam-output img")
                for label, resolution in (("default", None), (f"{STREAM_RESOLUTION}", STREAM_RESOLUTION)):
                    if resolution is not None:
                        resolution_box.fill(str(resolution))
                        resolution_box.press("Enter")
                        # wait for a styled frame of the new size
                        page.wait_for_function(
                            "(w) => { const i = document.querySelector('#webcam-output img');"
                            " return i && i.complete && i.naturalWidth === w; }", arg=resolution, timeout=30_000)
                    time.sleep(warmup)
                    start = page.evaluate("performance.now()")
                    time.sleep(seconds)
                    end = page.evaluate("performance.now()")
                    window = analyse_window(page.evaluate("window.__fstWebcam"), start, end)
                    window["setting"] = label
                    window["resolution"] = resolution or result["default_resolution"]
                    result["settings"].append(window)
                    print(f"  {label:8s} {window['fps']:5.2f} fps  latency p50 "
                          f"{window['latency_ms']['p50'] or float('nan'):.0f} ms  p95 "
                          f"{window['latency_ms']['p95'] or float('nan'):.0f} ms  app "
                          f"{window['app_latency_ms']['p50'] or float('nan'):.0f} ms  "
                          f"{window['output_sizes']}  {window['network']}", flush=True)
                result["stats_text"] = page.locator("#webcam-stats").inner_text().strip()
                archs = {e.name: e.path / "config.json" for e in style_entries(models_dir)}
                result["network_arch"] = {name: optional(lambda name=name: json.loads(
                    archs[name].read_text(encoding="utf-8"))["arch"]) for name in {w["network"] for w in result["settings"]}}
                result["app_errors"] = page.locator(".toast-body").all_inner_texts()
            finally:
                browser.close()
    except Exception as exc:  # noqa: BLE001 - report what broke, keep the flicker figures
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        if app is not None:
            result["app_log_tail"] = app.log()[-3000:]
    finally:
        if app is not None:
            result["app_stop"] = app.stop(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


# =============================================================================== report

def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def flicker_table(flick: dict) -> str:
    alphas = flick["alphas"]
    head = "| network | arch | raw | " + " | ".join(f"blend {a}" for a in alphas) + " | ms/frame min / p50 |"
    lines = [head, "|" + "---|" * (4 + len(alphas))]
    lines.append(f"| input frames (noise only) | - | {flick['input_flicker']:.2f} | " +
                 " | ".join("-" for _ in alphas) + " | - |")
    for s in flick["styles"]:
        cells = [f"{s['blended'][str(a)]:.2f} ({s['ratio'][str(a)]:.2f}x)" for a in alphas]
        lines.append(f"| {s['name']} | {s['arch']} | {s['raw']:.2f} (1.00x) | " + " | ".join(cells) +
                     f" | {s['ms_per_frame']['min']:.0f} / {s['ms_per_frame']['p50']:.0f} |")
    lines.append("| expected ratio, independent frame noise | | 1.00x | " +
                 " | ".join(f"{flick['expected_ratio'][str(a)]:.2f}x" for a in alphas) + " | |")
    return "\n".join(lines)


def e2e_table(e2e: dict) -> str:
    lines = [("| processing resolution (frame size) | styled frames out | fps (src changes) | fps displayed "
              "| frame interval p50 / p95 ms | latency p50 / p95 ms, upload to display | app latency p50 / p95 ms "
              "(server) | uploads/s | network |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for w in e2e["settings"]:
        size = ", ".join(sorted(w["output_sizes"], key=lambda k: -w["output_sizes"][k])) or "?"
        default = ", default" if w["setting"] == "default" else ""
        lines.append(
            f"| {w['resolution']} px ({size}{default}) | {w['frames']} in {w['seconds']:.1f} s | **{w['fps']:.2f}** "
            f"| {w['displayed_per_s']:.2f} | {fmt(w['interval_ms']['p50'])} / {fmt(w['interval_ms']['p95'])} "
            f"| **{fmt(w['latency_ms']['p50'])} / {fmt(w['latency_ms']['p95'])}** "
            f"| {fmt(w['app_latency_ms']['p50'])} / {fmt(w['app_latency_ms']['p95'])} | {w['uploads_per_s']:.1f} "
            f"| {w['network'] or '?'} ({(e2e.get('network_arch') or {}).get(w['network']) or '?'}) |")
    return "\n".join(lines)


def render(results: dict) -> str:
    """Tables as printed and as written into BENCHMARKS.md."""
    parts = []
    flick = results.get("flicker")
    if flick:
        parts.append(f"Flicker (mean |frame(t) - frame(t-1)|, 0..255; lower is better), static {flick['size']} scene "
                     f"({Path(flick['photo']).name}, {flick['frames']} frames, noise std {flick['sigma']:g}), "
                     f"{flick['device']}, {flick['torch_threads']} torch thread(s):\n")
        parts.append(flicker_table(flick) if flick["styles"] else "(no trained style network in the models folder)")
        if flick["skipped"]:
            parts.append("\nskipped: " + ", ".join(f"{s['name']} ({s['reason']})" for s in flick["skipped"]))
    e2e = results.get("e2e")
    if e2e:
        parts.append("")
        if e2e.get("skipped"):
            parts.append(f"End to end: skipped, {e2e['skipped']}")
        else:
            parts.append(f"End to end in headless Chromium ({e2e.get('camera')} as the fake camera), style "
                         f"{e2e.get('style', '?')!r}, network choice {e2e.get('network_choice', '?')!r}, temporal "
                         f"blend {e2e.get('blend', '?')}, {e2e.get('footer', '').split(' · ')[0].replace('Running on ', '')}, "
                         f"{e2e.get('seconds_per_setting')} s per setting after {e2e.get('warmup_s')} s warm-up:\n")
            parts.append(e2e_table(e2e))
            if e2e.get("error"):
                parts.append(f"\nerror: {e2e['error']}")
            stop = e2e.get("app_stop") or {}
            parts.append(f"\napp ready after {fmt(e2e.get('app_ready_s'), 1)} s; stopped: {stop.get('how')} "
                         f"(exit code {stop.get('returncode')})")
    return "\n".join(parts)


NOTES = """\
How to read it:
- Flicker: mean absolute difference between consecutive frames (0..255). The scene is static, so all of it
  is noise. "blend a" is the app's temporal blend (`fst.temporal.temporal_blend`, weight a on the previous
  styled frame; the webcam tab's default is 0.3); "expected" is the steady-state ratio of that moving average
  on independent frame noise, (1 - a) / sqrt(1 + a). ms/frame: `FastStyle.stylize` at 320x240 in this process.
- fps: changes of the styled image's src per second; "displayed": those whose image finished loading in the
  page before the next one replaced it. uploads/s: camera frames the page sent; the tab sends one every
  0.05 s (`stream_every` in app.py), so 20 fps is the ceiling whatever the network's speed, and the fake
  camera itself delivers 15 frames per second (the temporal blend can change the output between them).
- latency: from the upload of a camera frame (POST /gradio_api/stream/...) to the styled frame's `load` in the
  page. Gradio processes only the newest upload, so the frame behind each output is reconstructed from the
  upload and output times. "app latency" is the tab's own "ms per frame" (server side: decode, downscale,
  network, blend; a moving average), sampled at every output.
"""


def benchmarks_section(results: dict, command: str) -> str:
    m = results["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average_at_start"])
    load_end = ", ".join(f"{x:.1f}" for x in m.get("load_average_at_end", []))
    flick_threads = (results.get("flicker") or {}).get("torch_threads")
    app_threads = (results.get("e2e") or {}).get("footer", "").split(" · ")[0].replace("Running on ", "")
    threads = (f"torch threads: {flick_threads if flick_threads is not None else '?'} for the flicker runs, "
               f"app footer \"{app_threads or '?'}\" (the app's `configure_torch`: cores - 1)")
    return (f"{SECTION}\n\n"
            f"Reproduce: `{command}` (`--quick`: under 2 minutes; `--update-benchmarks` rewrites this section). "
            f"Results: bench/results/webcam.json.\n\n"
            f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, Python {m['python']}, {threads}. "
            f"Load average "
            f"(1, 5, 15 min) {load} at the start and {load_end} at the end: training jobs share the two cores, so "
            f"the absolute figures are pessimistic and noisy.\n\n"
            f"{render(results)}\n\n{NOTES}")


def add_results_args(parser: argparse.ArgumentParser, output: Path, heading: str) -> None:
    """--output (the results file), --render (tables of an earlier results file) and --update-benchmarks."""
    parser.add_argument("--output", type=Path, default=output)
    parser.add_argument("--render", type=Path, default=None, metavar="JSON",
                        help="print (and with --update-benchmarks, write) the tables of a results file; measure nothing")
    parser.add_argument("--update-benchmarks", action="store_true",
                        help=f"rewrite the '{heading[3:]}' section of BENCHMARKS.md")


def update_benchmarks(path: Path, section: str, heading: str = SECTION) -> None:
    """Replace the section of BENCHMARKS.md that starts with ``heading`` (or append it); other sections stay."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(heading) + r".*?(?=\n## |\Z)", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip() + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    path.write_text(text, encoding="utf-8")


# =============================================================================== main

def main(argv: list[str] | None = None) -> int:
    from fst.settings import enable_huge_pages

    enable_huge_pages()   # measured as the app and the fst command run: with huge pages (unless set to 0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 frames per style, 8 s per stream setting")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--photo", type=Path, default=HELD_OUT / DEFAULT_PHOTO, help="held-out photo")
    parser.add_argument("--frames", type=int, default=None, help="noisy frames per style (20; quick 10)")
    parser.add_argument("--sigma", type=float, default=4.0, help="sensor noise std (0..255)")
    parser.add_argument("--seconds", type=float, default=None, help="stream seconds per setting (15; quick 8)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds streamed before each window (3; quick 2)")
    parser.add_argument("--no-flicker", action="store_true")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM)
    add_results_args(parser, HERE / "results" / "webcam.json", SECTION)
    args = parser.parse_args(argv)
    frames = args.frames or (10 if args.quick else 20)
    seconds = args.seconds or (8.0 if args.quick else 15.0)
    warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 3.0)
    models_dir = args.models_dir.expanduser().resolve()
    args.photo = args.photo.expanduser().resolve()

    if args.render is not None:
        results = json.loads(args.render.read_text(encoding="utf-8"))
        print(render(results))
        if args.update_benchmarks:
            command = "python bench/webcam.py" + (" --quick" if results.get("quick") else "")
            update_benchmarks(ROOT / "BENCHMARKS.md", benchmarks_section(results, command))
            print("updated BENCHMARKS.md")
        return 0

    began = time.monotonic()
    results: dict[str, Any] = {"machine": machine_info(), "quick": args.quick, "models_dir": str(models_dir)}
    if not style_entries(models_dir):
        print(f"no style network in {models_dir} (catalog.json entries of kind 'style' whose folder exists); "
              "the defaults may still be training", file=sys.stderr)
        return 1
    if not args.no_flicker:
        print(f"flicker: {frames} noisy {FRAME_SIZE[0]}x{FRAME_SIZE[1]} frames of {args.photo.name}", flush=True)
        results["flicker"] = flicker_bench(models_dir, args.photo, frames, args.sigma, ALPHAS)
    if not args.no_browser:
        print(f"end to end: app + headless Chromium, {seconds:g} s per setting", flush=True)
        results["e2e"] = e2e_bench(models_dir, seconds, warmup, args.chromium)
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["wall_s"] = time.monotonic() - began

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print()
    print(render(results))
    print(f"\n{results['machine']['cpu']}, {results['machine']['cores']} cores, torch {results['machine']['torch']}; "
          f"load average {results['machine']['load_average_at_start'][0]:.1f} -> "
          f"{results['machine']['load_average_at_end'][0]:.1f}; {results['wall_s']:.0f} s; wrote {args.output}")
    if args.update_benchmarks:
        command = "python bench/webcam.py" + (" --quick" if args.quick else "")
        update_benchmarks(ROOT / "BENCHMARKS.md", benchmarks_section(results, command))
        print("updated BENCHMARKS.md")
    e2e = results.get("e2e") or {}
    return 1 if e2e.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
