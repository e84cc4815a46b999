"""The transcode floor (decode, colour conversions, encode; nothing masked) with the shipped conversions
against the earlier ones, and against ffmpeg's own CLI, in the same run.

    python bench/gpu.py --render /tmp/clips --frames 240              # a 1080p clip with ground truth
    python bench/transcode_floor.py --clip /tmp/clips/mixed.mp4 [--rounds 3] [--presets veryfast,ultrafast]

Settings, alternating round by round:

- shipped: the conversions a few frames at a time on threads (``pipeline/media/video/convert.py``), with
  bilinear chroma;
- before: one frame at a time on the decode and encode threads, with bicubic chroma (Veil until 4 December);
- ffmpeg: ``ffmpeg -i CLIP -an -c:v libx264 -preset P -crf C`` with Veil's CRF, which never leaves YUV.

It prints frames/s per setting and preset (median of the rounds), the ratios, and the busy seconds per
frame of the shipped run's stages. It asserts nothing.
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


def veil_floor(clip: Path, preset: str, out: Path, clock: StageClock) -> float:
    info = probe_video(clip)
    start = time.perf_counter()
    result = transcode(clip, out, info, VideoParams(preset=preset), lambda f: [] if f is None else [f], clock=clock)
    return result.frames_written / (time.perf_counter() - start)


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
        for _ in range(args.rounds):
            for preset in presets:
                speeds.setdefault(("shipped", preset), []).append(veil_floor(args.clip, preset, out, clock))
                with conversions_as_before():
                    speeds.setdefault(("before", preset), []).append(veil_floor(args.clip, preset, out, StageClock()))
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
        print(f"  x264 {preset:10} {line}: {ratio}")
    runs = args.rounds * len(presets) * max(frames, 1)
    busy = ", ".join(f"{stage} {seconds / runs * 1000:.1f}" for stage, seconds in clock.seconds().items())
    print(f"  shipped, busy ms a frame per stage (summed over threads): {busy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
