#!/usr/bin/env python
"""Load test of the Gradio app (not a unit test): concurrent API users plus live webcam streams.

    python bench/load_test.py                               # 16 users, 1000 requests, 2 webcam streams
    python bench/load_test.py --users 32 --requests 5000 --webcams 4 --models-dir models/
    python bench/load_test.py --url http://127.0.0.1:7860/ --pid 1234 --temp-dir /tmp/gradio

Unless ``--url`` is given, ``python app.py`` is started on 127.0.0.1 (a free port; loopback only)
with the tiny random-weight test networks of ``tests/app_helpers.py`` (``--models-dir`` for real
ones), its own GRADIO_TEMP_DIR and HF_HUB_OFFLINE=1, and stopped at the end. The run is bounded:
``--requests`` calls in all and ``--time-limit`` seconds, after which no new request starts.

* Users: ``--users`` threads, each a ``gradio_client.Client`` (its own session), call ``/stylize``
  back to back on small real photos (random crops of docs/examples, 48-160 px, a different
  crop for every request, as different visitors upload different photos), alternating styles,
  strengths and "preserve colours". ``--new-session-every K`` replaces a user's client every K
  requests (visitors come and go). Every answer is checked (a PNG of the expected size).
* Webcam streams: ``--webcams`` threads drive the webcam tab's stream event exactly as the
  browser does. That event is private (``api_visibility="private"``: gradio_client will not call
  it), so they speak Gradio's queue protocol directly: ``POST /gradio_api/queue/join`` (the first
  frame), ``GET /gradio_api/queue/data`` (server-sent events), ``POST /gradio_api/stream/{event}``
  (each next frame, sent when the previous styled frame arrives, at most one per ``stream_every``),
  ``POST .../close``. Frames are data URLs of JPEG crops, as the browser sends them. When the
  session time limit (FST_WEBCAM_SECONDS) ends a stream, the thread starts a new one ("press
  record again"). Streams run while the users do.
* "busy": a request refused because the queue is full (HTTP 503 "Queue is full"; gradio_client
  raises ``QueueError``); counted apart from failures (any other error or a wrong answer).
* Memory: the app's RSS (VmRSS in /proc/<pid>/status) after request ``--rss-mark`` and at the end;
  peak from a sampler every 0.2 s. Only when the app runs on this machine (``--pid``).
* Temp files: files under the app's GRADIO_TEMP_DIR before the load, at the end, and after
  ``--settle`` seconds idle (time for the app's temp-file clean-up, if any, to run).

Prints latency p50/p95/max (request sent to result downloaded), throughput, the webcam streams'
frame rate and latency, RSS and temp files; ``--json`` writes them to a file.
"""
from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
STYLES = ("starry_night", "great_wave")          # in the tiny test models folder and in models/


# ------------------------------------------------------------------------------ measurements
def rss_mb(pid: int | None) -> float | None:
    """Resident memory of process ``pid`` in MB (VmRSS), or None when it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def count_files(folder: Path | None) -> int | None:
    """Files (not folders) under ``folder``, recursively; None when no folder is given."""
    if folder is None:
        return None
    if not folder.is_dir():
        return 0
    return sum(len(files) for _, _, files in os.walk(folder))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100, linear interpolation) of ``values``; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Photos:
    """Small real photos: a different random crop of docs/examples for every call."""

    def __init__(self, seed: int = 0, sides: tuple[int, int] = (48, 160)):
        from PIL import Image

        self.sources = [Image.open(path).convert("RGB") for path in sorted(EXAMPLES.glob("*.jpg"))]
        if not self.sources:
            raise SystemExit(f"no example photos in {EXAMPLES}")
        self.sides = sides
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def crop(self):
        """A PIL image, 48-160 px on its longer side, never the same twice (in practice)."""
        with self._lock:
            source = self._rng.choice(self.sources)
            width = self._rng.randint(*self.sides)
            height = self._rng.randint(max(8, width // 2), width)
            if self._rng.random() < 0.5:
                width, height = height, width
            scale = self._rng.uniform(max(width / source.width, height / source.height), 1.0)
            box_w, box_h = max(width, int(source.width * scale)), max(height, int(source.height * scale))
            left = self._rng.randint(0, source.width - box_w)
            top = self._rng.randint(0, source.height - box_h)
        return source.crop((left, top, left + box_w, top + box_h)).resize((width, height))

    def jpeg(self, quality: int = 85) -> tuple[bytes, tuple[int, int]]:
        image = self.crop()
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue(), image.size


# ------------------------------------------------------------------------------ results
@dataclass
class StreamStats:
    frames: int = 0
    sessions: int = 0
    busy: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    users: int
    webcams: int
    planned: int
    ok: int = 0
    busy: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    rss_start_mb: float | None = None
    rss_mark_mb: float | None = None
    rss_end_mb: float | None = None
    rss_peak_mb: float | None = None
    rss_mark: int = 100
    rss_series: list[tuple[int, float]] = field(default_factory=list)   # (requests done, MB) every rss_mark
    temp_before: int | None = None
    temp_end: int | None = None
    temp_peak: int | None = None
    temp_settled: int | None = None
    webcam: StreamStats = field(default_factory=StreamStats)
    webcam_seconds: float = 0.0

    @property
    def completed(self) -> int:
        return self.ok + self.busy + self.failed

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def rss_growth_mb(self) -> float | None:
        if self.rss_mark_mb is None or self.rss_end_mb is None:
            return None
        return self.rss_end_mb - self.rss_mark_mb

    def summary(self) -> dict[str, Any]:
        lat = self.latencies
        cam = self.webcam
        return {
            "users": self.users, "requests": self.completed, "ok": self.ok, "busy": self.busy,
            "failed": self.failed, "seconds": round(self.seconds, 2),
            "throughput_rps": round(self.throughput, 2),
            "latency_ms": {"p50": round(percentile(lat, 50) * 1000, 1), "p95": round(percentile(lat, 95) * 1000, 1),
                           "max": round(max(lat) * 1000, 1) if lat else None},
            "rss_mb": {"start": _round(self.rss_start_mb), f"after_{self.rss_mark}": _round(self.rss_mark_mb),
                       "end": _round(self.rss_end_mb), "peak": _round(self.rss_peak_mb),
                       "growth_after_mark": _round(self.rss_growth_mb), "series": self.rss_series},
            "temp_files": {"before": self.temp_before, "end": self.temp_end, "peak": self.temp_peak,
                           "settled": self.temp_settled},
            "webcam": {"streams": self.webcams, "sessions": cam.sessions, "frames": cam.frames, "busy": cam.busy,
                       "failed": cam.failed,
                       "fps_per_stream": round(cam.frames / self.webcam_seconds / max(1, self.webcams), 2)
                       if self.webcam_seconds else None,
                       "latency_ms": {"p50": round(percentile(cam.latencies, 50) * 1000, 1),
                                      "p95": round(percentile(cam.latencies, 95) * 1000, 1)}},
            "errors": self.errors[:10] + cam.errors[:10],
        }

    def report(self) -> str:
        s = self.summary()
        lat, rss, tmp, cam = s["latency_ms"], s["rss_mb"], s["temp_files"], s["webcam"]
        lines = [
            (f"/stylize: {s['requests']} requests from {self.users} users in {s['seconds']} s: {s['ok']} ok, "
             f"{s['busy']} busy (queue full), {s['failed']} failed"),
            (f"  latency p50 {lat['p50']} ms, p95 {lat['p95']} ms, max {lat['max']} ms; "
             f"throughput {s['throughput_rps']} requests/s"),
        ]
        if self.webcams:
            lines.append(f"webcam: {self.webcams} streams, {cam['sessions']} sessions, {cam['frames']} frames "
                         f"({cam['fps_per_stream']} fps per stream), latency p50 {cam['latency_ms']['p50']} ms, "
                         f"p95 {cam['latency_ms']['p95']} ms; {cam['busy']} busy, {cam['failed']} failed")
        if rss["end"] is not None:
            lines.append(f"app RSS: {rss['start']} MB at start, {rss[f'after_{self.rss_mark}']} MB after request "
                         f"{self.rss_mark}, {rss['end']} MB at the end (growth {rss['growth_after_mark']} MB), "
                         f"peak {rss['peak']} MB")
            if len(self.rss_series) > 2:
                lines.append("  RSS every " + f"{self.rss_mark} requests: "
                             + ", ".join(f"{mb:.0f}" for _, mb in self.rss_series) + " MB")
        if tmp["before"] is not None:
            lines.append(f"temp files: {tmp['before']} before, {tmp['end']} at the end (peak {tmp['peak']}), "
                         f"{tmp['settled']} after settling")
        for error in s["errors"]:
            lines.append(f"  error: {error}")
        return "\n".join(lines)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ------------------------------------------------------------------------------ webcam streams
class WebcamStream(threading.Thread):
    """One browser's webcam tab, spoken in Gradio's queue protocol (see the module docstring)."""

    def __init__(self, url: str, photos: Photos, stats: StreamStats, lock: threading.Lock, stop: threading.Event,
                 *, style: str = STYLES[0], resolution: int = 128, deadline: float = float("inf")):
        super().__init__(name="webcam-stream", daemon=True)
        import httpx

        self.url, self.api = url, url.rstrip("/") + "/gradio_api/"
        self.photos, self.stats, self.lock, self.stop = photos, stats, lock, stop
        self.style, self.resolution, self.deadline = style, resolution, deadline
        self.http = httpx.Client(timeout=httpx.Timeout(30.0, read=60.0))
        config = self.http.get(self.url.rstrip("/") + "/config").json()
        stream = next(d for d in config["dependencies"] if any(t[1] == "stream" for t in d["targets"]))
        self.fn_index = stream["id"]
        self.trigger_id = next(t[0] for t in stream["targets"] if t[1] == "stream")
        self.interval = float(stream.get("stream_every") or 0.1)
        # Every input of the stream event at its default, so added controls need no change here;
        # the first five (frame, style, strength, resolution, smoothing) are set per frame.
        components = {c["id"]: c for c in config["components"]}
        self.defaults = [None if components[i].get("type") == "state" else components[i].get("props", {}).get("value")
                         for i in stream["inputs"]]
        self.session_hash = uuid.uuid4().hex[:11]   # one browser tab: one session for all its streams

    def _frame(self) -> dict[str, str]:
        data, _ = self.photos.jpeg(quality=80)
        return {"url": "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")}

    def _body(self) -> dict[str, Any]:
        data = [self._frame(), self.style, 1.0, self.resolution, 0.3, *self.defaults[5:]]
        return {"data": data,
                "fn_index": self.fn_index, "trigger_id": self.trigger_id, "session_hash": self.session_hash,
                "event_data": None}

    def _record(self, **changes: Any) -> None:
        with self.lock:
            for key, value in changes.items():
                if key == "latency":
                    self.stats.latencies.append(value)
                elif key == "error":
                    if len(self.stats.errors) < 20:
                        self.stats.errors.append(value)
                else:
                    setattr(self.stats, key, getattr(self.stats, key) + value)

    def run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            try:
                self.session()
            except Exception as exc:  # noqa: BLE001 - counted, the load goes on
                self._record(failed=1, error=f"webcam: {type(exc).__name__}: {str(exc)[:200]}")
                time.sleep(0.5)
        self.http.close()

    def session(self) -> None:
        """One stream, from the first frame to its end (time limit, or closed when the load stops)."""
        sent = time.monotonic()
        answer = self.http.post(self.api + "queue/join", json=self._body())
        if answer.status_code == 503:
            self._record(busy=1)
            time.sleep(1.0)
            return
        answer.raise_for_status()
        event_id = answer.json()["event_id"]
        self._record(sessions=1)
        closing = False
        with self.http.stream("GET", self.api + "queue/data", params={"session_hash": self.session_hash}) as sse:
            for line in sse.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") not in (None, event_id):
                    continue
                kind = message.get("msg")
                if kind == "process_streaming":
                    output = (message.get("output") or {}).get("data") or []
                    if not output or not output[0] or "fps" not in str(output[1] if len(output) > 1 else ""):
                        self._record(failed=1, error=f"webcam: unexpected frame {str(output)[:200]}")
                    else:
                        self._record(frames=1, latency=time.monotonic() - sent)
                    if closing:
                        continue
                    if self.stop.is_set() or time.monotonic() >= self.deadline:
                        self.http.post(self.api + f"stream/{event_id}/close")
                        closing = True
                        continue
                    time.sleep(max(0.0, self.interval - (time.monotonic() - sent)))
                    sent = time.monotonic()
                    self.http.post(self.api + f"stream/{event_id}", json=self._body())
                elif kind == "process_completed":
                    if not message.get("success", False):
                        self._record(failed=1, error=f"webcam: {str(message.get('output'))[:200]}")
                    return
                elif kind in ("unexpected_error", "close_stream"):
                    self._record(failed=1, error=f"webcam: {kind}: {str(message)[:200]}")
                    return


# ------------------------------------------------------------------------------ the load
def run_load(url: str, *, users: int = 16, requests: int = 1000, webcams: int = 2, time_limit: float = 600.0,
             pid: int | None = None, temp_dir: Path | None = None, rss_mark: int = 100, max_side: int = 256,
             new_session_every: int = 0, settle: float = 0.0, seed: int = 0, verbose: bool = True) -> LoadResult:
    """Run the load against the app at ``url``; see the module docstring. Never raises for a failed request."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError
    from PIL import Image

    result = LoadResult(users=users, webcams=webcams, planned=requests, rss_mark=rss_mark)
    photos = Photos(seed)
    lock = threading.Lock()
    counter = itertools.count()
    stop = threading.Event()
    work = Path(tempfile.mkdtemp(prefix="fst-load-"))
    deadline = time.monotonic() + time_limit
    result.rss_start_mb = rss_mb(pid)
    result.temp_before = count_files(temp_dir)

    def note(**changes: Any) -> None:
        with lock:
            for key, value in changes.items():
                if key == "latency":
                    result.latencies.append(value)
                elif key == "error":
                    if len(result.errors) < 20:
                        result.errors.append(value)
                else:
                    setattr(result, key, getattr(result, key) + value)
            if result.completed % rss_mark == 0 and (memory := rss_mb(pid)) is not None:
                result.rss_series.append((result.completed, round(memory, 1)))
                if result.completed == rss_mark:
                    result.rss_mark_mb = memory

    def user(number: int) -> None:
        client, calls = None, 0
        rng = random.Random(seed * 1000 + number)
        folder = work / f"user-{number}"
        folder.mkdir()
        while not stop.is_set() and time.monotonic() < deadline:
            index = next(counter)
            if index >= requests:
                break
            try:
                if client is None or (new_session_every and calls % new_session_every == 0):
                    client = Client(url, verbose=False, download_files=str(folder))
            except Exception as exc:  # noqa: BLE001
                note(failed=1, error=f"connect: {type(exc).__name__}: {str(exc)[:200]}")
                client = None
                continue
            calls += 1
            data, size = photos.jpeg()
            upload = folder / f"photo-{index}.jpg"
            upload.write_bytes(data)
            style, strength = rng.choice(STYLES), rng.choice((1.0, 0.8, 0.5))
            started = time.monotonic()
            try:
                out = client.predict(handle_file(str(upload)), style, strength, max_side, rng.random() < 0.25,
                                     api_name="/stylize")
                elapsed = time.monotonic() - started
                with Image.open(out) as styled:
                    good = styled.format == "PNG" and styled.size == size
                Path(out).unlink(missing_ok=True)
                if good:
                    note(ok=1, latency=elapsed)
                else:
                    note(failed=1, error=f"request {index}: wrong answer {styled.format} {styled.size} for {size}")
            except QueueError as exc:
                note(busy=1, error=f"request {index}: busy: {exc}")
            except AppError as exc:
                note(failed=1, error=f"request {index}: {exc}")
            except Exception as exc:  # noqa: BLE001 - counted, the load goes on
                note(failed=1, error=f"request {index}: {type(exc).__name__}: {str(exc)[:200]}")
            finally:
                upload.unlink(missing_ok=True)

    def sample() -> None:
        while not stop.wait(0.2):
            memory, files = rss_mb(pid), count_files(temp_dir)
            with lock:
                if memory is not None:
                    result.rss_peak_mb = max(result.rss_peak_mb or 0.0, memory)
                if files is not None:
                    result.temp_peak = max(result.temp_peak or 0, files)

    cam_stats = StreamStats()
    streams = [WebcamStream(url, photos, cam_stats, threading.Lock(), stop, style=STYLES[i % len(STYLES)],
                            deadline=deadline) for i in range(webcams)]
    sampler = threading.Thread(target=sample, name="sampler", daemon=True)
    workers = [threading.Thread(target=user, args=(i,), name=f"user-{i}", daemon=True) for i in range(users)]
    started = time.monotonic()
    sampler.start()
    for thread in [*streams, *workers]:
        thread.start()
    try:
        for thread in workers:
            thread.join(max(1.0, deadline - time.monotonic() + 60))
    finally:
        result.seconds = time.monotonic() - started
        stop.set()
        for thread in streams:
            thread.join(30)
        result.webcam_seconds = time.monotonic() - started
        sampler.join(5)
    result.webcam = cam_stats
    result.rss_end_mb = rss_mb(pid)
    result.rss_peak_mb = max(filter(None, (result.rss_peak_mb, result.rss_end_mb)), default=None)
    result.temp_end = count_files(temp_dir)
    if result.temp_end is not None:
        result.temp_peak = max(result.temp_peak or 0, result.temp_end)
    if settle > 0 and temp_dir is not None:
        limit = time.monotonic() + settle
        while time.monotonic() < limit and count_files(temp_dir) > (result.temp_before or 0):
            time.sleep(0.5)
        result.temp_settled = count_files(temp_dir)
    shutil.rmtree(work, ignore_errors=True)
    if verbose:
        print(result.report(), flush=True)
    return result


# ------------------------------------------------------------------------------ the app
def start_app(workdir: Path, models_dir: Path | None = None, env: dict[str, str] | None = None):
    """``python app.py`` on 127.0.0.1 (tests/app_helpers.AppProcess); the tiny test networks unless
    ``models_dir`` is given. Returns the running AppProcess (call ``.stop()``)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from app_helpers import AppProcess, make_models_dir

    if models_dir is None:
        models_dir = make_models_dir(workdir / "models")
    full_env = {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    return AppProcess(models_dir, workdir, env=full_env).wait_ready()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=16, help="concurrent API users (default 16)")
    parser.add_argument("--requests", type=int, default=1000, help="/stylize calls in all (default 1000)")
    parser.add_argument("--webcams", type=int, default=2, help="concurrent webcam streams (default 2)")
    parser.add_argument("--time-limit", type=float, default=600, help="no new request after this many seconds")
    parser.add_argument("--max-side", type=int, default=256, help="the max_side argument of /stylize")
    parser.add_argument("--new-session-every", type=int, default=0,
                        help="each user opens a new session (client) every K requests (0: never)")
    parser.add_argument("--rss-mark", type=int, default=100, help="RSS growth is measured from this request on")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait at the end for the temp files to be cleaned")
    parser.add_argument("--url", default=None, help="an app already running (default: start one)")
    parser.add_argument("--pid", type=int, default=None, help="with --url: the app's process id, for its RSS")
    parser.add_argument("--temp-dir", type=Path, default=None, help="with --url: the app's GRADIO_TEMP_DIR")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="models folder for the app started here (default: the tiny test networks)")
    parser.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment of the app started here, e.g. FST_QUEUE_SIZE=64 (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = parser.parse_args(argv)

    app, workdir = None, None
    # gradio_client leaves an empty folder in the temp dir per download: keep them in one we remove.
    client_temp = Path(tempfile.mkdtemp(prefix="fst-load-client-"))
    tempfile.tempdir = str(client_temp)
    if args.url is None:
        workdir = Path(tempfile.mkdtemp(prefix="fst-load-app-"))
        env = dict(item.split("=", 1) for item in args.app_env)
        print(f"starting the app ({'tiny test networks' if args.models_dir is None else args.models_dir}) ...",
              flush=True)
        app = start_app(workdir, args.models_dir, env)
        url, pid, temp_dir = app.url, app.process.pid, workdir / "gradio"
        print(f"app at {url} (pid {pid})", flush=True)
    else:
        url, pid, temp_dir = args.url, args.pid, args.temp_dir
    try:
        result = run_load(url, users=args.users, requests=args.requests, webcams=args.webcams,
                          time_limit=args.time_limit, pid=pid, temp_dir=temp_dir, rss_mark=args.rss_mark,
                          max_side=args.max_side, new_session_every=args.new_session_every, settle=args.settle)
    finally:
        if app is not None:
            app.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        tempfile.tempdir = None
        shutil.rmtree(client_temp, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = {**result.summary(), "cpu_count": os.cpu_count(), "url_started_here": app is not None}
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0 if result.failed == 0 and result.webcam.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
