"""The transcode floor (decode, colour conversions, encode; nothing masked) with the shipped conversions
against the earlier ones, and against ffmpeg's own CLI, in the same run.

    python bench/gpu.py --render /tmp/clips --frames 240              # a 1080p clip with ground truth
    python bench/transcode_floor.py --clip /tmp/clips/mixed.mp4 [--rounds 3] [--presets veryfast,ultrafast]

Settings, alternating round by round:

- shipped: the conversions a few frames at a time on threads (``pipeline/media/video/convert.py``), with
  bilinear chroma;
- before: one frame at a time on the decode and encode threads, with bicubic chroma (Veil until 4 December);
- ffmpeg: ``ffmpeg -i CLIP -an -c:v libx264 -preset P -crf C`` with Veil's CRF, which never leaves YUV.

It prints frames/s per setting and preset (median of the rounds), the ratios, the size and luma PSNR of the
shipped output against the input (what a faster preset costs), and the busy seconds per frame of the
shipped run's stages. It asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import av
import numpy as np
from av.video.reformatter import Interpolation

from pipeline.media.video import probe_video, reader, transcode, writer
from pipeline.params import VideoParams
from pipeline.timing import StageClock

BEFORE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP


@contextlib.contextmanager
def conversions_as_before() -> Iterator[None]:
    """One frame at a time, bicubic chroma: a benchmark patches the modules' names."""
    saved = (reader.conversion_threads, writer.conversion_threads, reader.SWS_FLAGS, writer.SWS_FLAGS)
    reader.conversion_threads = writer.conversion_threads = lambda width, height: 1  # type: ignore[assignment]
    reader.SWS_FLAGS = writer.SWS_FLAGS = BEFORE_FLAGS  # type: ignore[misc]
    try:
        yield
    finally:
        reader.conversion_threads, writer.conversion_threads, reader.SWS_FLAGS, writer.SWS_FLAGS = saved


def floor_fps(clip: Path, video: VideoParams, out: Path, clock: StageClock) -> tuple[float, float]:
    """Veil's transcode with nothing masked: frames/s, and the wall seconds it took (``clock`` gets the stages)."""
    info = probe_video(clip)
    start = time.perf_counter()
    result = transcode(clip, out, info, video, lambda frame: [] if frame is None else [frame], clock=clock)
    wall = time.perf_counter() - start
    return result.frames_written / wall, wall


def luma_psnr(source: Path, encoded: Path) -> float:
    """Luma PSNR of ``encoded`` against ``source``, frame by frame, in dB."""
    errors = []
    with av.open(str(source)) as first, av.open(str(encoded)) as second:
        for a, b in zip(first.decode(video=0), second.decode(video=0), strict=True):
            height = a.height
            plane_a, plane_b = a.to_ndarray()[:height].astype(np.float32), b.to_ndarray()[:height].astype(np.float32)
            errors.append(float(np.mean((plane_a - plane_b) ** 2)))
    return float(10 * np.log10(255**2 / max(np.mean(errors), 1e-9)))


def ffmpeg_floor(clip: Path, preset: str, out: Path, frames: int) -> float:
    start = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-an", "-c:v", "libx264", "-preset", preset,
                    "-crf", str(VideoParams().crf), str(out)], check=True)
    return frames / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--presets", default=VideoParams().preset)
    args = parser.parse_args()
    frames = probe_video(args.clip).frame_count or 0
    presets = [p for p in args.presets.split(",") if p]
    speeds: dict[tuple[str, str], list[float]] = {}
    clock = StageClock()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.mp4"
        quality: dict[str, tuple[float, float]] = {}  # preset: (MB, luma PSNR) of the shipped output
        for _ in range(args.rounds):
            for preset in presets:
                speeds.setdefault(("shipped", preset), []).append(floor_fps(args.clip, VideoParams(preset=preset), out, clock)[0])
                quality[preset] = (out.stat().st_size / 1e6, luma_psnr(args.clip, out))
                with conversions_as_before():
                    speeds.setdefault(("before", preset), []).append(
                        floor_fps(args.clip, VideoParams(preset=preset), out, StageClock())[0])
                if frames:
                    speeds.setdefault(("ffmpeg", preset), []).append(ffmpeg_floor(args.clip, preset, out, frames))
    print(f"{args.clip.name}: {frames} frames, {args.rounds} rounds, frames/s (median)")
    for preset in presets:
        median = {name: statistics.median(speeds[(name, preset)]) for name in ("shipped", "before", "ffmpeg")
                  if (name, preset) in speeds}
        line = ", ".join(f"{name} {fps:.1f}" for name, fps in median.items())
        ratio = f"shipped is {median['shipped'] / median['before']:.2f}x before"
        if "ffmpeg" in median:
            ratio += f", {median['shipped'] / median['ffmpeg']:.2f} of ffmpeg"
        size, psnr = quality[preset]
        print(f"  x264 {preset:10} {line}: {ratio}; output {size:.1f} MB, luma PSNR {psnr:.1f} dB against the input")
    runs = args.rounds * len(presets) * max(frames, 1)
    busy = ", ".join(f"{stage} {seconds / runs * 1000:.1f}" for stage, seconds in clock.seconds().items())
    print(f"  shipped, busy ms a frame per stage (summed over threads): {busy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
