"""Veil's video path with the networks free: what the host's own work allows, the ceiling a GPU cannot lift.

    python bench/gpu.py --render /tmp/clips --frames 240              # a 1080p clip, faces and a plate
    python bench/host_ceiling.py --clip /tmp/clips/mixed.mp4 [--rounds 2] [--device cpu|cuda] [--side-by-side]

A first run records every network output (the defaults: ``Params()``, every class); the later runs replay
them in the same order instead of running the networks (each class's network its own outputs, so the classes
may run side by side, as they do by default on a GPU: ``--side-by-side`` on the CPU), so the pipeline takes
exactly the same path at no network cost. What is left is the host's work: decoding, the colour conversions, camera motion, the host's
side of detection (crops, letterboxes, decoding the outputs, NMS), tracking, planning, masking, encoding.

Settings, alternating round by round:

- shipped: camera motion and scene cuts run ahead of detection on a thread of their own (``transcode``'s
  ``early``), and the masks are painted on the encoder's conversion threads (``late``);
- inline: the same work on the stage's thread, as before 4 December.

It prints, per setting: frames/s with the networks free, against the transcode floor measured in the same
run; and the stage thread's CPU milliseconds per frame. Every frame waits for that one thread, so 1000 / its
milliseconds is the most frames/s one stream can reach on a host with cores to spare, whatever the GPU. The
same for every other thread of the shipped setting: each of the look thread, the class thread (side by
side) and each conversion thread is another such wall.
A replay that diverges from the recording (a different number of network calls, or different counts in the
QC report) is reported. It asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

with contextlib.suppress(ImportError):
    import torch  # noqa: F401  (loads the CUDA runtime libraries that onnxruntime-gpu looks for)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import onnxruntime as ort

from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.params import Params
from pipeline.timing import StageClock
from pipeline.video import process

from bench.transcode_floor import floor_fps

SETTINGS = ("shipped", "inline")
PROGRESS_EVERY = 60


class Tape:
    """Every network output of one run, by session in call order; replayed in the same order. Each class's
    network has its own session and is called in one order, whether the classes run in turn or side by side."""

    def __init__(self) -> None:
        self.outputs: collections.defaultdict[int, list[list]] = collections.defaultdict(list)
        self.played: collections.Counter[int] = collections.Counter()
        self._run = ort.InferenceSession.run

    @property
    def calls(self) -> int:
        return sum(len(outputs) for outputs in self.outputs.values())

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        run, outputs = self._run, self.outputs

        def record(session, output_names, feeds, *args, **kwargs):
            result = run(session, output_names, feeds, *args, **kwargs)
            outputs[id(session)].append(result)
            return result

        with self._patched(record):
            yield

    @contextlib.contextmanager
    def replaying(self) -> Iterator[None]:
        self.played.clear()
        outputs, played = self.outputs, self.played

        def replay(session, _output_names, _feeds, *_args, **_kwargs):
            played[id(session)] += 1  # one thread calls a session at a time
            return outputs[id(session)][played[id(session)] - 1]

        with self._patched(replay):
            yield

    @contextlib.contextmanager
    def _patched(self, run) -> Iterator[None]:
        ort.InferenceSession.run = run  # type: ignore[method-assign]
        try:
            yield
        finally:
            ort.InferenceSession.run = self._run  # type: ignore[method-assign]


class ThreadTimes:
    """CPU seconds of every other Python thread while it counts, summed by the thread's name without its pool
    number ("veil-rgb_0" and "veil-rgb_1" count as "veil-rgb"): on a host with cores to spare, the busiest
    single thread is the wall one stream runs into. Threads that outlive a run (the engine's class threads)
    count what they spent during it. The encoder's and the networks' own threads (libx264's, onnxruntime's)
    are not Python threads and are not counted."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self.threads: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        before = {thread: _cpu_seconds(thread) for thread in _other_threads()}
        ended: list[tuple[threading.Thread, float]] = []
        run = threading.Thread.run

        def timed(thread: threading.Thread) -> None:
            try:
                run(thread)
            finally:
                ended.append((thread, time.thread_time()))

        threading.Thread.run = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            threading.Thread.run = run  # type: ignore[method-assign]
        finished = {thread for thread, _ in ended}
        spent = [(thread, seconds) for thread, seconds in ended if thread not in before]
        spent += [(thread, _cpu_seconds(thread) - before.get(thread, 0.0))
                  for thread in _other_threads() if thread not in finished]
        for thread, seconds in spent:
            name = re.sub(r"_\d+$", "", thread.name)
            self.seconds[name] += seconds
            self.threads[name] += 1


def _other_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread is not threading.current_thread()]


def _cpu_seconds(thread: threading.Thread) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident or 0))


@contextlib.contextmanager
def all_on_the_stage_thread() -> Iterator[None]:
    """Camera motion, scene cuts and painting on the stage's thread, as before (a benchmark patches)."""
    shipped = process.transcode

    def inline(src, dst, info, params, stage, *, early=None, late=None, **kwargs):
        def everything(frame):
            if frame is not None and early is not None:
                early(frame)
            ready = stage(frame)
            for done in ready if late is not None else ():
                late(done)
            return ready

        return shipped(src, dst, info, params, everything, **kwargs)

    process.transcode = inline  # type: ignore[assignment]
    try:
        yield
    finally:
        process.transcode = shipped


def counts(report) -> tuple:
    video = report.video
    return video["frames_written"], video["frames_detected"], len(video["tracks"]), report.disposition


def one_run(clip: Path, out: Path, params: Params, engine: Engine, *, loud: bool = False
            ) -> tuple[float, float, dict, tuple, dict]:
    """frames/s, the stage thread's CPU ms per frame, the stage seconds per frame, the report's counts, and
    every other thread's CPU ms per frame, by name (and how many threads had that name).
    ``loud``: a line every ``PROGRESS_EVERY`` progress calls (one a frame, one a batch of re-detection
    windows), so a run stopped by a time limit still tells its pace."""
    for leftover in out.parent.glob(out.name + "*"):
        leftover.unlink()
    start, cpu = time.perf_counter(), time.thread_time()  # the stage runs in this thread
    seen = itertools.count(1)

    def progress() -> None:  # once per frame, and once per batch of re-detection windows
        if loud and (calls := next(seen)) % PROGRESS_EVERY == 0:
            print(f"  [{time.perf_counter() - start:6.1f} s] {calls} progress calls", flush=True)

    clocks = ThreadTimes()
    with clocks.counting():
        report = process.process_video(clip, out, params, engine, name=clip.name, progress=progress)
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    frames = report.video["frames_written"]
    stages = {stage: 1000 * seconds / frames for stage, seconds in report.video["stage_seconds"].items()}
    threads = {name: (1000 * seconds / frames, clocks.threads[name]) for name, seconds in clocks.seconds.items()}
    return frames / wall, 1000 * cpu / frames, stages, counts(report), threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--side-by-side", action="store_true",
                        help="each class's network on a thread of its own, as on a GPU (the CPU's default: in turn)")
    args = parser.parse_args()

    params = Params()
    loading = time.perf_counter()
    runtime = RuntimeParams(device=args.device, model_dir=args.model_dir,
                            classes_side_by_side=True if args.side_by_side else None)
    engine = Engine.load(params.detector, runtime)
    providers = sorted({provider for record in engine.model_records for provider in record.providers})
    print(f"engine loaded in {time.perf_counter() - loading:.1f} s: {', '.join(providers)}; classes side by side: "
          f"{runtime.side_by_side}", flush=True)
    tape = Tape()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"veil{args.clip.suffix}"
        with tape.recording():
            full_fps, _, _, recorded, _ = one_run(args.clip, out, params, engine, loud=True)
        print(f"recorded {tape.calls} network calls; Veil with its networks: {full_fps:.2f} frames/s "
              "(first calls of each input shape included)", flush=True)

        fps: dict[str, list[float]] = {s: [] for s in SETTINGS}
        cpu: dict[str, list[float]] = {s: [] for s in SETTINGS}
        stages: dict[str, dict] = {}
        threads: dict[str, dict] = {}
        floors = []
        for round_ in range(args.rounds):
            for setting in SETTINGS:
                with tape.replaying(), all_on_the_stage_thread() if setting == "inline" else contextlib.nullcontext():
                    rate, stage_cpu, stages[setting], replayed, threads[setting] = one_run(
                        args.clip, out, params, engine)
                if tape.played.total() != tape.calls or replayed != recorded:
                    print(f"  {setting}: the replay diverged ({tape.played.total()} calls, counts {replayed} "
                          f"against {recorded})")
                fps[setting].append(rate)
                cpu[setting].append(stage_cpu)
            floors.append(floor_fps(args.clip, params.video, Path(tmp) / f"floor{args.clip.suffix}", StageClock())[0])
            print(f"round {round_ + 1}: " + ", ".join(f"{s} {fps[s][-1]:.2f}" for s in SETTINGS)
                  + f", floor {floors[-1]:.2f} frames/s", flush=True)

    floor = statistics.median(floors)
    print(f"\nmedians of {args.rounds} rounds; the transcode floor {floor:.2f} frames/s")
    print("| setting | frames/s, networks free | / floor | stage thread CPU ms a frame | its cap, frames/s |")
    print("|---|---|---|---|---|")
    for setting in SETTINGS:
        rate, stage_cpu = statistics.median(fps[setting]), statistics.median(cpu[setting])
        print(f"| {setting} | {rate:.2f} | {rate / floor:.2f} | {stage_cpu:.2f} | {1000 / stage_cpu:.0f} |")
    print("\nbusy ms per frame by stage (last shipped round): "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(stages["shipped"].items(), key=lambda kv: -kv[1])))
    print("CPU ms per frame by thread (last shipped round; a pool's threads summed, then per thread): "
          + ", ".join(f"{name} {ms:.2f}" + (f" ({count} threads, {ms / count:.2f} each)" if count > 1 else "")
                      for name, (ms, count) in sorted(threads["shipped"].items(), key=lambda kv: -kv[1][0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
