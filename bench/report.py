#!/usr/bin/env python
"""Render a bench/results/*.json file as the Markdown tables of BENCHMARKS.md.

    python bench/report.py bench/results/latest-quick.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def render(results: dict) -> str:
    m = results["machine"]
    lines = [f"Machine: {m['model']}, {m['cores']} cores, torch {m['torch']} (CPU capability "
             f"{m['torch_capability']}), onnxruntime {m['onnxruntime']}; AVX-512 {m['avx512f']}, "
             f"AVX512-BF16 {m['avx512_bf16']}; load average at start {m['load_average_at_start']}.",
             f"Run: {'quick' if results['quick'] else 'full'}, {results['wall_seconds']:.0f} s. "
             f"Measured conv peak (oneDNN, channels_last 3x3 256->256): " +
             ", ".join(f"{t} thr {g:.0f} GFLOP/s" for t, g in results["conv_peak_gflops"].items() if g) + ".", "",
             "| size | threads | candidate | min ms | p50 ms | p95 ms | fps | vs reference | GFLOP (nominal) | % of conv peak |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["latency"]:
        lines.append(f"| {r['size']} | {r['threads']} | {r['candidate']} | {r['min'] * 1e3:.1f} | {r['p50'] * 1e3:.1f} | "
                     f"{r['p95'] * 1e3:.1f} | {r['fps']:.1f} | {r['speedup_vs_reference'] or 0:.2f}x | "
                     f"{r['gflop'] or 0:.1f} | {(r['fraction_of_conv_peak'] or 0) * 100:.0f}% |")
    if results.get("huge_pages_off"):
        lines += ["", "Huge pages off (`THP_MEM_ALLOC_ENABLE=0`), same sizes, 1 thread:", "",
                  "| candidate | min ms | p50 ms | vs reference |", "|---|---|---|---|"]
        for r in results["huge_pages_off"]:
            lines.append(f"| {r['candidate']} | {r['min'] * 1e3:.1f} | {r['p50'] * 1e3:.1f} | "
                         f"{r['speedup_vs_reference']:.2f}x |")
    lines += ["", "| size | what | peak RSS MB | time |", "|---|---|---|---|"]
    for r in results["memory"]:
        if "rss_mb" in r:
            lines.append(f"| {r['size']} | {r['candidate']} | {r['rss_mb']:.0f} | {r['seconds']:.2f} s |")
    lines += ["", "| threads | training step | min s | p50 s | images/s | vs reference |", "|---|---|---|---|---|---|"]
    for r in results["training"]:
        lines.append(f"| {r['threads']} | {r['candidate']} | {r['min']:.2f} | {r['p50']:.2f} | {r['images_per_s']:.2f} | "
                     f"{r['speedup_vs_reference']:.2f}x |")
    colorizer = results.get("colorizer", {})
    if colorizer and "error" not in colorizer and "skipped" not in colorizer:
        lines += ["", "Colorizer (fst/colorizer.py, default config): " + "; ".join(
            f"{size}: {min(v['colorizer']) * 1e3:.0f} ms (the reference style network: {min(v['reference']) * 1e3:.0f} ms)"
            for size, v in colorizer.items()) + "."]
    gatys = results.get("gatys", {})
    if gatys.get("reached"):
        size = gatys.get("size")
        size = "x".join(str(n) for n in reversed(size)) if isinstance(size, list) else str(size)
        lines += ["", f"Gatys (fst/gatys.py, L-BFGS, {size} px, {Path(str(gatys.get('model'))).name}): reached the "
                  f"feed-forward network's loss ({gatys['ff_loss']:.3g}) after {gatys['reached']['seconds']:.1f} s and "
                  f"{gatys['reached']['evaluations']} evaluations; the network took {gatys['ff_seconds'] * 1e3:.0f} ms "
                  f"({gatys['reached']['seconds'] / gatys['ff_seconds']:.0f}x faster)."]
    flops = results.get("flops", {})
    if flops:
        lines += ["", "| network | params | GMAC 640x480 (plain) | GMAC 640x480 (sub-pixel rewrite) |", "|---|---|---|---|"]
        for name, v in flops.items():
            lines.append(f"| {name} | {v['params']:,} | {v['gmacs']['640x480']:.2f} | {v['gmacs_subpixel']['640x480']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest-quick.json"
    print(render(json.loads(path.read_text())))
