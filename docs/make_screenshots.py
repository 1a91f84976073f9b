#!/usr/bin/env python
"""Refresh the README's screenshots (docs/screenshots/) from the app on the real default models.

    python docs/make_screenshots.py

Starts `python app.py` on a free local port, drives headless Chromium (Debian's
/usr/bin/chromium) through the image and colorize tabs, and saves full-page PNGs.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from app_helpers import AppProcess  # noqa: E402
from y4m import write_y4m  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

EXAMPLES = ROOT / "docs" / "examples"
OUT = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def camera_frames(count: int = 30) -> list:
    """A slowly panning crop of an example photo, as the fake camera's video."""
    import numpy as np

    photo = np.asarray(Image.open(EXAMPLES / "tiger.jpg").convert("RGB").resize((400, 266)))
    return [np.ascontiguousarray(photo[13:253, i * 2:i * 2 + 320]) for i in range(count)]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        app = AppProcess(ROOT / "models", Path(tmp)).wait_ready()
        try:
            with sync_playwright() as pw:
                camera = write_y4m(Path(tmp) / "camera.y4m", camera_frames(), fps=15)
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                    *ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={camera}"])
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                page.goto(app.url)
                page.wait_for_selector("#image-input")
                page.locator("#image-input input[type=file]").set_input_files(str(EXAMPLES / "castle.jpg"))
                page.wait_for_selector("#image-input img")
                page.locator("#style-gallery .thumbnail-item").nth(0).click()
                page.click("#stylize-button")
                page.wait_for_selector("#image-result img", timeout=120_000)
                page.wait_for_timeout(1000)
                page.screenshot(path=str(OUT / "image_tab.png"), full_page=True)

                gray = Path(tmp) / "old_photo.png"
                Image.open(EXAMPLES / "horses.jpg").convert("L").save(gray)
                page.get_by_role("tab", name="Colorize").click()
                page.locator("#colorize-input input[type=file]").set_input_files(str(gray))
                page.wait_for_selector("#colorize-input img")
                page.click("#colorize-button")
                page.wait_for_selector("#colorize-result img", timeout=120_000)
                page.wait_for_timeout(1000)
                page.screenshot(path=str(OUT / "colorize_tab.png"), full_page=True)

                page.get_by_role("tab", name="Webcam").click()
                page.locator("#webcam-input").get_by_text("Click to Access Webcam").click()
                page.wait_for_selector("#webcam-input video:not(.hide)")
                page.locator("#webcam-input button[aria-label='capture photo']").click()
                page.wait_for_selector("#webcam-output img", timeout=120_000)
                page.wait_for_timeout(4000)
                page.screenshot(path=str(OUT / "webcam_tab.png"), full_page=True)
                browser.close()
        finally:
            app.stop()
    print(f"screenshots written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
