"""Screenshots of the review station for docs/review.md (docs/review-*.png).

Puts a group photo and the first seconds of a face clip from ../shared/eval into review, as the service
would (real models), starts ``veil review``, signs in with headless Chromium and photographs the queue, the
photo's page (detection outlines and scores drawn over the masked result, a reviewer's box) and the
video's page (the scrubber, track boxes over a masked frame).

    .venv/bin/python tools/review_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import EVAL
from tests.integration.review_items import put_in_review
from tests.integration.test_review_browser import CHROMIUM, CHROMIUM_ARGS, drag_box, write_config

TOKEN = "screenshot-token-0123456789abcdef"


def first_frames(src: Path, dst: Path, count: int, width: int) -> Path:
    """The first ``count`` frames of ``src``, scaled to ``width`` (a short clip keeps the run short)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream_in = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=stream_in.average_rate)
        stream.width = width
        stream.height = round(stream_in.codec_context.height * width / stream_in.codec_context.width / 2) * 2
        stream.pix_fmt = "yuv420p"
        for index, frame in enumerate(inp.decode(stream_in)):
            if index == count:
                break
            scaled = frame.reformat(width=stream.width, height=stream.height)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(scaled.to_ndarray(format="rgb24"), format="rgb24")))
        out.mux(stream.encode())
    return dst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from pipeline.detect.engine import Engine

    from daemon.config.settings import load_settings

    from tests.integration.test_rework import FACES

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        config = write_config(root)
        folder = load_settings(config).folders[0]
        engine = Engine.load(FACES.detector)
        put_in_review(folder, EVAL / "dlib_faces_voc" / "images" / "2008_002470.jpg", engine, FACES)
        clip = first_frames(EVAL / "videos" / "egoblur_gen1_test_video.mp4", root / "selfie.mp4", 45, 270)
        put_in_review(folder, clip, engine, FACES)
        token = root / "token"
        token.write_text(TOKEN)
        token.chmod(0o600)
        server = subprocess.Popen([sys.executable, "-m", "daemon.cli", "review", "--config", str(config),
                                   "--port", "0", "--token-file", str(token)], stdout=subprocess.PIPE, text=True)
        try:
            url = re.search(r"(http://\S+/)", server.stdout.readline()).group(1)
            with sync_playwright() as p:
                browser = p.chromium.launch_persistent_context(
                    str(root / "profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                    viewport={"width": 1280, "height": 760})
                page = browser.new_page()
                page.goto(url)
                page.fill("#token", TOKEN)
                page.click("#sign-in")
                page.wait_for_selector("a.item-link")
                args.out.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out / "review-queue.png"))
                page.click("a.item-link:text('2008_002470.jpg')")
                page.wait_for_selector("body[data-ready=true]")
                page.wait_for_selector("body[data-shown='0']")
                drag_box(page, (0.03, 0.55, 0.2, 0.8))
                page.fill("#reviewer", "alice")
                page.screenshot(path=str(args.out / "review-item.png"))
                page.goto(url)
                page.click("a.item-link:text('selfie.mp4')")
                page.wait_for_selector("body[data-ready=true]")
                page.fill("#frame", "20")
                page.dispatch_event("#frame", "input")
                page.wait_for_selector("body[data-shown='20']")
                page.screenshot(path=str(args.out / "review-video.png"))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrote {args.out}/review-queue.png, review-item.png, review-video.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
