"""The app under load (bench/load_test.py, smaller): concurrent /stylize users plus webcam streams,
a full queue, memory and temp files. Each case starts its own ``python app.py`` on 127.0.0.1."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from app_helpers import REPO_ROOT, seed_hub_style

sys.path.insert(0, str(REPO_ROOT / "bench"))
from load_test import LoadResult, percentile, run_load, start_app  # noqa: E402 (after the path)

pytestmark = pytest.mark.slow

USERS, REQUESTS, WEBCAMS = 6, 200, 2
RSS_MARK = 100                 # RSS growth is measured from this request to the end ...
RSS_GROWTH_LIMIT_MB = 80       # ... and must stay below this
TEMP_TTL = 10                  # FST_TEMP_TTL of the app under load: temp files older than this are deleted
TEMP_SLACK = 5                 # files allowed to remain after the clean-up had its time
EXAMPLES = REPO_ROOT / "docs" / "examples"


@pytest.fixture(scope="module")
def load(tmp_path_factory) -> LoadResult:
    """One load run: 6 API users x 200 /stylize requests and 2 webcam streams, at the default queue size
    (16 on CPU, so nothing may be refused); webcam sessions of 5 s, so streams also end and restart."""
    work = tmp_path_factory.mktemp("load")
    app = start_app(work, env={"FST_TEMP_TTL": str(TEMP_TTL), "FST_WEBCAM_SECONDS": "5"})
    try:
        yield run_load(app.url, users=USERS, requests=REQUESTS, webcams=WEBCAMS, time_limit=240,
                       pid=app.process.pid, temp_dir=work / "gradio", rss_mark=RSS_MARK,
                       settle=TEMP_TTL + 8, verbose=False)
    finally:
        app.stop()
    assert "Traceback" not in app.log(), app.log()[-3000:]


def test_every_request_and_frame_is_served(load, capsys):
    with capsys.disabled():
        print("\n" + load.report())
    assert load.errors == [] and load.webcam.errors == []
    assert (load.ok, load.busy, load.failed) == (REQUESTS, 0, 0)
    assert load.webcam.failed == 0 and load.webcam.busy == 0
    assert load.webcam.frames >= 10 * WEBCAMS, "the webcam streams were starved"
    assert load.webcam.sessions >= WEBCAMS
    assert percentile(load.latencies, 95) < 30, "p95 latency above 30 s"


def test_memory_stays_bounded(load):
    assert load.rss_mark_mb is not None and load.rss_end_mb is not None
    assert load.rss_growth_mb < RSS_GROWTH_LIMIT_MB, (
        f"app RSS grew by {load.rss_growth_mb:.0f} MB between request {RSS_MARK} and {REQUESTS}")


def test_temp_files_are_cleaned(load):
    """Every request leaves an upload and a result in GRADIO_TEMP_DIR, every webcam frame a .webp:
    the app must delete them (gr.Blocks(delete_cache=...), FST_TEMP_TTL) or the disk fills up."""
    created = 2 * REQUESTS + load.webcam.frames
    assert load.temp_settled is not None
    assert load.temp_settled <= load.temp_before + TEMP_SLACK, (
        f"{load.temp_settled - load.temp_before} temp files (the load made ~{created}: uploads, results, webcam "
        f"frames) are still in GRADIO_TEMP_DIR {TEMP_TTL + 8} s after it although FST_TEMP_TTL={TEMP_TTL}: "
        "the app does not clean its temp files (needs gr.Blocks(delete_cache=...) and gradio 6.31's "
        "clean-up task survives concurrent requests)")
    assert load.temp_peak < created, "nothing was deleted while the load ran"


def test_a_slow_hub_download_delays_no_one_and_a_full_queue_answers_busy(tmp_path, hub):
    """FST_CONCURRENCY=1, FST_HUB_DOWNLOADS=1, FST_QUEUE_SIZE=1: a request whose network comes slowly from
    the Hub takes no compute slot, so a catalogue style is served meanwhile. Two such requests fill both
    request slots, one more waits in the queue, the next is refused with HTTP 503 "Queue is full"
    (gradio_client: QueueError "... try again"), and the queue keeps working afterwards."""
    from gradio_client import Client, handle_file
    from gradio_client.utils import QueueError, Status

    slow_style = seed_hub_style(hub, tmp_path / "slow_style", "fst-tests/slow-style")
    app = start_app(tmp_path, env={"FST_QUEUE_SIZE": "1", "FST_CONCURRENCY": "1", "FST_HUB_DOWNLOADS": "1",
                                   "HF_HUB_OFFLINE": "0", "FST_HUB_TIMEOUT": "60"})
    photo = handle_file(str(EXAMPLES / "tiger.jpg"))
    busy = (Status.PROCESSING, Status.PROGRESS)
    try:
        clients = [Client(app.url, verbose=False, download_files=str(tmp_path / f"out{i}")) for i in range(5)]
        with hub.fault(f"/{slow_style}/resolve/main/config.json", "delay", seconds=12,
                       method="HEAD") as hold:
            running = clients[0].submit(photo, slow_style, 1.0, 128, False, api_name="/stylize")
            _wait(lambda: hold.hits == 1, "the first request to start loading its network")
            started = time.monotonic()
            quick = clients[1].predict(photo, "starry_night", 1.0, 128, False, api_name="/stylize")
            assert Path(quick).read_bytes()[:4] == b"\x89PNG" and not running.done()
            assert time.monotonic() - started < 8, "a catalogue style waited for another user's Hub download"

            second = clients[1].submit(photo, slow_style, 1.0, 128, False, api_name="/stylize")
            _wait(lambda: second.status().code in busy, "the second slow request to take the other slot")
            waiting = clients[2].submit(photo, "starry_night", 1.0, 128, False, api_name="/stylize")
            _wait(lambda: waiting.status().code == Status.IN_QUEUE, "a request to wait in the queue")
            refused = clients[3].submit(photo, "great_wave", 1.0, 128, False, api_name="/stylize")
            with pytest.raises(QueueError, match="Queue is full! Please try again"):
                refused.result(timeout=30)
            config = httpx.get(app.url + "config").json()
            fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "stylize")
            answer = httpx.post(app.url + "gradio_api/queue/join", timeout=30,
                                json={"data": [None] * 5, "fn_index": fn_index, "session_hash": "busy-probe"})
            assert answer.status_code == 503
            assert "Queue is full. Max size is 1" in answer.json()["detail"]
            assert running.status().code in busy and not waiting.done()

        for job in (running, second, waiting):
            assert Path(job.result(timeout=120)).read_bytes()[:4] == b"\x89PNG"
        again = clients[4].predict(photo, "great_wave", 1.0, 128, False, api_name="/stylize")
        assert Path(again).read_bytes()[:4] == b"\x89PNG"
    finally:
        app.stop()
    assert "Traceback" not in app.log(), app.log()[-3000:]


def _wait(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
