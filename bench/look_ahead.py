"""The look thread's own work per frame: what needs only one frame made ahead on other threads, or inline.

    python bench/gpu.py --render /tmp/clips --frames 240              # a 1080p clip, faces and a plate
    python bench/look_ahead.py --clip /tmp/clips/mixed.mp4 [--rounds 3]

``VideoJob.look`` runs on a thread of its own that every frame passes through, in order: camera motion and
the scene-cut test. With the classes side by side (a GPU's default), it is the busiest thread a stream waits
for (``bench/host_ceiling.py --side-by-side``). What needs only one frame, the detectors' views and the
corners camera motion follows, is made on the ``ahead`` threads; "inline" makes them on the look thread, as
before 5 December. The clip is decoded once; each round calls ``look`` on every frame, alternating the two
settings, and takes the look thread's CPU time (``time.thread_time``, which other threads' load inflates
less than wall time). Same transforms either way (``tests/unit/test_track_motion.py``). It asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import Executor, Future
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.media.video.frames import DecodedFrame
from pipeline.media.video.probe import VideoInfo, probe_video
from pipeline.media.video.reader import VideoReader
from pipeline.params import Params
from pipeline.track.motion import CameraMotion
from pipeline.video.process import VideoJob

SETTINGS = ("ahead", "inline")


class Inline(Executor):
    """Runs what is submitted at once, on the caller's thread."""

    def submit(self, fn, /, *args, **kwargs):
        done: Future = Future()
        done.set_result(fn(*args, **kwargs))
        return done


def look_cpu_ms(frames: list[DecodedFrame], info: VideoInfo, params: Params, engine: Engine, setting: str) -> float:
    """The look thread's CPU milliseconds per frame, every frame looked at in order."""
    with tempfile.TemporaryDirectory() as tmp:
        job = VideoJob(info, params, engine, Path(tmp) / "boxes.gz")
        if setting == "inline":
            job.ahead.shutdown()
            job.ahead = Inline()  # type: ignore[assignment]
            job.camera = CameraMotion(job.ahead) if job.camera is not None else None
        start = time.thread_time()
        for frame in frames:
            job.look(frame)
        cpu = time.thread_time() - start
        for seen in job.looks.values():
            seen.views.result()
        job.ahead.shutdown()
        job.boxes.close()
    return 1000 * cpu / len(frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    params = Params()
    engine = Engine.load(params.detector, RuntimeParams())
    info = probe_video(args.clip)
    with VideoReader(args.clip) as reader:
        frames = list(reader.frames())
    ms: dict[str, list[float]] = {setting: [] for setting in SETTINGS}
    for round_ in range(args.rounds):
        for setting in SETTINGS:
            ms[setting].append(look_cpu_ms(frames, info, params, engine, setting))
        print(f"round {round_ + 1}: " + ", ".join(f"{s} {ms[s][-1]:.2f}" for s in SETTINGS) + " ms a frame", flush=True)
    ahead, inline = (statistics.median(ms[s]) for s in SETTINGS)
    print(f"\n{len(frames)} frames of {info.width}x{info.height}, medians of {args.rounds} rounds: the look thread's CPU "
          f"{inline:.2f} ms a frame inline, {ahead:.2f} with the one-frame work ahead ({inline / ahead:.2f}x less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
