"""x264 with frame threads (Veil's encoder setting up to 1440p) against sliced threads (PyAV's default), same run.

    python bench/encoder_threads.py [--frames N] [--rounds R]

PyAV opens encoders with ``thread_type = SLICE``, which libavcodec's libx264 wrapper turns into x264's
sliced threads; ffmpeg's CLI leaves frame threads on. ``pipeline/media/video/writer.py`` now asks for AUTO
below 4K. This encodes the same 1080p frames (a real photo panned across the frame, so motion search has
work) at Veil's default preset and CRF both ways, alternating, and prints frames/s, the ratio and the sizes.
On a many-core host the gap is the point: run it there too. It asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.params import VideoParams

PHOTO = REPO / ".." / "shared" / "eval" / "openalpr_endtoend" / "images" / "eu" / "eu8.jpg"


def frames(count: int) -> list[np.ndarray]:
    photo = cv2.imread(str(PHOTO)) if PHOTO.is_file() else None
    if photo is None:  # no evaluation data: a textured pattern instead
        photo = (np.random.default_rng(0).integers(0, 256, (540, 960, 3), dtype=np.uint8) // 64 * 64).astype(np.uint8)
    wide = cv2.resize(photo, (2400, 1350))
    return [np.ascontiguousarray(wide[20 + i % 200 : 1100 + i % 200, 4 * i % 480 : 4 * i % 480 + 1920, ::-1])
            for i in range(count)]


def encode(images: list[np.ndarray], thread_type: str, out: Path) -> float:
    params = VideoParams()
    start = time.perf_counter()
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": params.preset, "crf": str(params.crf)})
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.codec_context.thread_type = thread_type
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return len(images) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    images = frames(args.frames)
    speeds: dict[str, list[float]] = {"SLICE": [], "AUTO": []}
    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for thread_type in speeds:
                out = Path(folder) / f"{thread_type}.mp4"
                speeds[thread_type].append(encode(images, thread_type, out))
                sizes[thread_type] = out.stat().st_size
    for thread_type, runs in speeds.items():
        print(f"{thread_type:6} {np.median(runs):6.2f} fps (median of {len(runs)}: "
              f"{', '.join(f'{r:.2f}' for r in runs)}), {sizes[thread_type] / 1e6:.2f} MB")
    print(f"frame threads (AUTO) / sliced threads: {np.median(speeds['AUTO']) / np.median(speeds['SLICE']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
