"""The review station in headless Chromium: sign in, add a box on an image and a region over a frame range
on a video, approve, and check the published pixels. ``VEIL_SCREENSHOTS=docs`` also saves the screenshots
docs/review.md shows (docs/review-queue.png, docs/review-item.png)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.integration.review_items import put_in_review, textured_clip, textured_image
from tests.integration.test_rework import FACES, frames_of, pixels

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "browser-test-token-0123456789abcdef"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)


def write_config(root: Path) -> Path:
    config = root / "veil.toml"
    config.write_text(f"""
[service]
instance = "test"
state_dir = "{root / 'state'}"
[drift]
enabled = false
store_dir = "{root / 'state'}"
[profiles.default.detector]
classes = ["face"]
[profiles.default.video.face_scales]
upscale_below = 0
[[folders]]
name = "cams"
ingest = "{root / 'ingest'}"
output = "{root / 'output'}"
""")
    return config


@pytest.fixture()
def station(tmp_path, face_engine):
    """Two items in review (an image and a short video) and ``veil review`` serving them."""
    from daemon.config.settings import load_settings

    config = write_config(tmp_path)
    folder = load_settings(config).folders[0]
    put_in_review(folder, textured_image(tmp_path / "yard.png"), face_engine, FACES)
    put_in_review(folder, textured_clip(tmp_path / "clip.mp4"), face_engine, FACES)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    process = subprocess.Popen([sys.executable, "-m", "daemon.cli", "review", "--config", str(config), "--port", "0",
                                "--token-file", str(token)], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        yield match.group(1), folder
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture()
def page(tmp_path):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 860})
        try:
            yield browser.new_page()
        finally:
            browser.close()


def drag_box(page, box: tuple[float, float, float, float]) -> None:
    """Drag on the overlay from (x1, y1) to (x2, y2), given relative to the picture."""
    area = page.locator("#overlay").bounding_box()
    x1, y1, x2, y2 = box
    page.mouse.move(area["x"] + x1 * area["width"], area["y"] + y1 * area["height"])
    page.mouse.down()
    page.mouse.move(area["x"] + x2 * area["width"], area["y"] + y2 * area["height"], steps=8)
    page.mouse.up()


def screenshot(page, name: str) -> None:
    where = os.environ.get("VEIL_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / name), full_page=True)


def test_a_reviewer_adds_a_box_on_an_image_and_a_range_on_a_video_and_approves(station, page):
    url, folder = station
    image_before = pixels(folder.review / "yard.png")
    video_before = frames_of(folder.review / "clip.mp4")

    assert page.goto(url).status == 401  # the queue asks for the token first
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    page.wait_for_selector("a.item-link")
    assert page.locator("a.item-link").count() == 2
    screenshot(page, "review-queue.png")

    # The image: a box by drag, then approve.
    page.click("a.item-link:text('yard.png')")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("body[data-shown='0']")
    drag_box(page, (0.25, 0.25, 0.5, 0.5))
    page.check("input[name=tool][value=polygon]")
    area = page.locator("#overlay").bounding_box()
    for x, y in [(0.7, 0.6), (0.95, 0.6), (0.95, 0.95)]:  # a polygon: click three corners, double-click the fourth
        page.mouse.click(area["x"] + x * area["width"], area["y"] + y * area["height"])
    page.mouse.dblclick(area["x"] + 0.7 * area["width"], area["y"] + 0.95 * area["height"])
    assert page.locator("#edits li").count() == 2
    page.fill("#reviewer", "alice")
    screenshot(page, "review-item.png")
    page.click("#approve")
    page.wait_for_selector("body[data-approved=true]", timeout=60_000)
    assert "Approved" in page.inner_text("#status")

    after = pixels(folder.output / "yard.png")
    change = np.abs(after - image_before)
    assert change[66:114, 86:154].mean() > 30  # well inside the dragged box (x 80..160, y 60..120 of 320x240)
    change[50:130, 70:170] = 0  # the box, give or take the pointer's rounding
    assert change[160:220, 235:300].mean() > 30  # inside the polygon (x 224..304, y 144..228)
    change[135:235, 215:315] = 0
    assert change.max() == 0

    # The video: a region over frames 3..6, key boxes on frames 8 and 10 (interpolated on 9), then approve.
    page.goto(url)
    page.click("a.item-link:text('clip.mp4')")
    page.wait_for_selector("body[data-ready=true]")
    page.check("input[name=scope][value=range]")
    page.fill("#range-first", "3")
    page.fill("#range-last", "6")
    show_frame(page, 4)
    drag_box(page, (0.5, 0.02, 0.98, 0.5))
    assert "frames 3–6" in page.inner_text("#edits")
    page.check("input[name=scope][value=keys]")
    for frame in (8, 10):
        show_frame(page, frame)
        drag_box(page, (0.02, 0.6, 0.4, 0.98))
    page.click("#keys-done")
    assert "frames 8–10" in page.inner_text("#edits")
    page.fill("#reviewer", "alice")
    page.click("#approve")
    page.wait_for_selector("body[data-approved=true]", timeout=60_000)

    video_after = frames_of(folder.output / "clip.mp4")
    assert len(video_after) == len(video_before)
    for index, (before, after) in enumerate(zip(video_before, video_after)):
        change = np.abs(after - before)
        upper_right = change[8:40, 72:120].mean()  # inside the range's region (128x96)
        assert (upper_right > 20) if 3 <= index <= 6 else (upper_right < 3), (index, upper_right)
        lower_left = change[64:90, 8:44].mean()  # inside the key boxes' region
        assert (lower_left > 20) if 8 <= index <= 10 else (lower_left < 3), (index, lower_left)
    assert not list(folder.review.glob("*.veil.json"))  # both items left review


def show_frame(page, index: int) -> None:
    page.fill("#frame", str(index))
    page.dispatch_event("#frame", "input")
    page.wait_for_selector(f"body[data-shown='{index}']")
