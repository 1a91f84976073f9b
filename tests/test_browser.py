"""End to end in headless Chromium (Playwright): the image, colorize, webcam and video tabs.

The webcam is Chromium's fake camera playing a generated .y4m file. Screenshots of
each tab go to pytest's temporary folder (``screenshots*`` under ``--basetemp``, kept for
the last runs); the README's own come from ``python docs/make_screenshots.py``.
"""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_helpers import REPO_ROOT, shared_app
from fst.color import rgb_to_lab_np
from y4m import moving_pattern, read_y4m_header, write_y4m

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
EXAMPLES = REPO_ROOT / "docs" / "examples"
TIMEOUT_MS = 60_000


INSTALL_HINT = "install chromium: apt-get install -y chromium chromium-driver"


def test_chromium_is_installed():
    """Fails (never skips) without the system Chromium: these tests must run in CI."""
    if not CHROMIUM.exists():
        pytest.fail(INSTALL_HINT)


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory) -> Path:
    path = write_y4m(tmp_path_factory.mktemp("camera") / "camera.y4m", moving_pattern(30), fps=15)
    assert read_y4m_header(path) == {"W": "320", "H": "240", "F": "15:1", "I": "p", "A": "1:1", "C": "420jpeg"}
    assert path.stat().st_size == len(read_y4m_header_line(path)) + 30 * (6 + 320 * 240 * 3 // 2)
    return path


def read_y4m_header_line(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.readline()


@pytest.fixture(scope="module")
def browser(camera_file):
    if not CHROMIUM.exists():
        pytest.fail(INSTALL_HINT)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera_file}"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app(hub, tmp_path_factory):
    return shared_app(hub, tmp_path_factory.mktemp("app"))


@pytest.fixture()
def page(browser, app):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(app.url)
    page.wait_for_selector("#image-input")
    yield page
    context.close()
    assert not dialogs, f"a script ran in the page: {dialogs}"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where the tabs' screenshots go: a temporary folder, never the repository."""
    return tmp_path_factory.mktemp("screenshots")


def image_at(page, selector: str, timeout: float = 10.0) -> np.ndarray:
    """The pixels of the <img> inside ``selector`` (fetched from the app, or decoded from a data URL).

    The src can be read while Gradio is still swapping in the result's file; it is read
    again until it yields an image, for up to ``timeout`` seconds."""
    import base64

    deadline = time.monotonic() + timeout
    while True:
        src = page.locator(f"{selector} img").first.get_attribute("src")
        if src.startswith("data:"):
            data, problem = base64.b64decode(src.split(",", 1)[1]), "undecodable data URL"
        else:
            response = page.request.get(src)
            data, problem = response.body(), f"GET {src}: HTTP {response.status}"
        try:
            return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        except Image.UnidentifiedImageError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{selector} shows no decodable image ({problem})") from None
            time.sleep(0.2)


def upload(page, selector: str, path: Path) -> None:
    """Choose a file in an image input and wait until the upload has reached the app."""
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))
    page.wait_for_selector(f"{selector} img")


def choose(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option).click()


def test_image_tab(page, screenshots):
    # the gallery shows the catalogue and the network found on the Hub by tag
    page.wait_for_function("document.querySelectorAll('#style-gallery .thumbnail-item').length >= 3")
    upload(page, "#image-input", EXAMPLES / "tiger.jpg")
    page.locator("#style-gallery .thumbnail-item").nth(1).click()
    page.wait_for_function("document.querySelector('#style-dropdown input').value.startsWith('The Great Wave')")
    page.wait_for_selector("#model-info :text('embedded copy of fast-style/great-wave')")
    page.click("#stylize-button")
    page.wait_for_selector("#image-result img")
    result = image_at(page, "#image-result")
    source = np.asarray(Image.open(EXAMPLES / "tiger.jpg"))
    assert result.shape == source.shape
    assert np.abs(result.astype(int) - source.astype(int)).mean() > 5
    page.screenshot(path=str(screenshots / "image_tab.png"), full_page=True)


def test_bad_upload_shows_an_error_and_runs_no_script(page, bad_inputs):
    upload(page, "#image-input", bad_inputs / "images" / "script.svg")
    page.click("#stylize-button")
    page.wait_for_function("document.body.innerText.includes('unsupported format: SVG')")
    assert page.locator("#image-result img").count() == 0


def test_colorize_tab(page, tmp_path, screenshots):
    gray = tmp_path / "old_photo.png"
    Image.open(EXAMPLES / "castle.jpg").convert("L").save(gray)
    page.get_by_role("tab", name="Colorize").click()
    assert "No trained colorizer" not in page.locator("#colorizer-notice").inner_text()   # one is installed
    upload(page, "#colorize-input", gray)
    page.click("#colorize-button")
    page.wait_for_selector("#colorize-result img")
    result = image_at(page, "#colorize-result")
    assert result.shape == (480, 320, 3)
    assert np.linalg.norm(rgb_to_lab_np(result)[..., 1:], axis=-1).mean() > 1.0     # colours were added
    page.screenshot(path=str(screenshots / "colorize_tab.png"), full_page=True)


def test_webcam_tab(page, screenshots):
    page.get_by_role("tab", name="Webcam").click()
    page.locator("#webcam-input").get_by_text("Click to Access Webcam").click()
    page.wait_for_selector("#webcam-input video:not(.hide)")
    page.locator("#webcam-input button[aria-label='capture photo']").click()
    page.wait_for_selector("#webcam-output img")   # the first styled frame

    def frames_for(seconds: float) -> set[int]:
        seen: set[int] = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            img = page.locator("#webcam-output img")
            if img.count():
                seen.add(hash(img.first.get_attribute("src")))
            time.sleep(0.1)
        return seen

    first = frames_for(5)
    assert len(first) >= 3, "styled frames should keep arriving"
    stats = page.locator("#webcam-stats").inner_text()
    assert "starry_night_rt · " in stats   # the webcam network on CPU
    assert re.search(r"\d+ px \(adaptive, 15 fps target\)", stats), stats   # the resolution adapts by default
    page.screenshot(path=str(screenshots / "webcam_tab.png"), full_page=True)
    choose(page, "#webcam-style", "The Great Wave off Kanagawa (Hokusai)")
    page.wait_for_function("document.querySelector('#webcam-stats').innerText.includes('great_wave · ')")
    assert len(frames_for(3)) >= 3, "the stream goes on after switching style"
    assert "fps" in page.locator("#webcam-stats").inner_text()


def test_video_tab(page, tmp_path, screenshots):
    from video_clips import panning_frames, read_clip, write_clip

    clip = write_clip(tmp_path / "clip.mp4", panning_frames(8, 96, 128), audio="aac")
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    page.wait_for_selector("#video-input video")
    page.click("#video-button")
    page.wait_for_selector("#video-result video[src]")
    # the result plays in the browser: Chromium decodes its first frame
    shown = page.evaluate("""async () => {
        const video = document.querySelector('#video-result video');
        if (video.readyState < 2) await new Promise(done => video.addEventListener('loadeddata', done, {once: true}));
        return {width: video.videoWidth, height: video.videoHeight, duration: video.duration};
    }""")
    assert (shown["width"], shown["height"]) == (128, 96) and shown["duration"] > 0.25
    result = tmp_path / "result.mp4"
    result.write_bytes(page.request.get(page.locator("#video-result video").first.get_attribute("src")).body())
    seen = read_clip(result)
    assert seen["codec"] == "h264" and len(seen["frames"]) == 8 and seen["audio"] == "aac"
    page.screenshot(path=str(screenshots / "video_tab.png"), full_page=True)
