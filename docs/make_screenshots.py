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
from playwright.sync_api import sync_playwright  # noqa: E402

EXAMPLES = ROOT / "docs" / "examples"
OUT = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        app = AppProcess(ROOT / "models", Path(tmp)).wait_ready()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
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
                browser.close()
        finally:
            app.stop()
    print(f"screenshots written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
