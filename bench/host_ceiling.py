"""Veil's video path with the networks free: what the host's own work allows, the ceiling a GPU cannot lift.

    python bench/gpu.py --render /tmp/clips --frames 240              # a 1080p clip, faces and a plate
    python bench/host_ceiling.py --clip /tmp/clips/mixed.mp4 [--rounds 2] [--device cpu|cuda]

A first run records every network output (the defaults: ``Params()``, every class); the later runs replay
them in the same order instead of running the networks, so the pipeline takes exactly the same path at no
network cost. What is left is the host's work: decoding, the colour conversions, camera motion, the host's
side of detection (crops, letterboxes, decoding the outputs, NMS), tracking, planning, masking, encoding.

Settings, alternating round by round:

- shipped: camera motion and scene cuts run ahead of detection on a thread of their own (``transcode``'s
  ``early``), and the masks are painted on the encoder's conversion threads (``late``);
- inline: the same work on the stage's thread, as before 4 December.

It prints, per setting: frames/s with the networks free, against the transcode floor measured in the same
run; and the stage thread's CPU milliseconds per frame. Every frame waits for that one thread, so 1000 / its
milliseconds is the most frames/s one stream can reach on a host with cores to spare, whatever the GPU.
A replay that diverges from the recording (a different number of network calls, or different counts in the
QC report) is reported. It asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import sys
import tempfile
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
    """Every network output of one run, in call order; replayed in the same order."""

    def __init__(self) -> None:
        self.outputs: list[list] = []
        self.played = 0
        self._run = ort.InferenceSession.run

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        run, outputs = self._run, self.outputs

        def record(session, output_names, feeds, *args, **kwargs):
            result = run(session, output_names, feeds, *args, **kwargs)
            outputs.append(result)
            return result

        with self._patched(record):
            yield

    @contextlib.contextmanager
    def replaying(self) -> Iterator[None]:
        self.played = 0

        def replay(_session, _output_names, _feeds, *_args, **_kwargs):
            self.played += 1
            return self.outputs[self.played - 1]

        with self._patched(replay):
            yield

    @contextlib.contextmanager
    def _patched(self, run) -> Iterator[None]:
        ort.InferenceSession.run = run  # type: ignore[method-assign]
        try:
            yield
        finally:
            ort.InferenceSession.run = self._run  # type: ignore[method-assign]


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
            ) -> tuple[float, float, dict, tuple]:
    """frames/s, the stage thread's CPU ms per frame, the stage seconds per frame, the report's counts.
    ``loud``: a line every ``PROGRESS_EVERY`` progress calls (one a frame, one a batch of re-detection
    windows), so a run stopped by a time limit still tells its pace."""
    for leftover in out.parent.glob(out.name + "*"):
        leftover.unlink()
    start, cpu = time.perf_counter(), time.thread_time()  # the stage runs in this thread
    seen = itertools.count(1)

    def progress() -> None:  # once per frame, and once per batch of re-detection windows
        if loud and (calls := next(seen)) % PROGRESS_EVERY == 0:
            print(f"  [{time.perf_counter() - start:6.1f} s] {calls} progress calls", flush=True)

    report = process.process_video(clip, out, params, engine, name=clip.name, progress=progress)
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    frames = report.video["frames_written"]
    stages = {stage: 1000 * seconds / frames for stage, seconds in report.video["stage_seconds"].items()}
    return frames / wall, 1000 * cpu / frames, stages, counts(report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args()

    params = Params()
    loading = time.perf_counter()
    engine = Engine.load(params.detector, RuntimeParams(device=args.device, model_dir=args.model_dir))
    providers = sorted({provider for record in engine.model_records for provider in record.providers})
    print(f"engine loaded in {time.perf_counter() - loading:.1f} s: {', '.join(providers)}", flush=True)
    tape = Tape()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"veil{args.clip.suffix}"
        with tape.recording():
            full_fps, _, _, recorded = one_run(args.clip, out, params, engine, loud=True)
        print(f"recorded {len(tape.outputs)} network calls; Veil with its networks: {full_fps:.2f} frames/s "
              "(first calls of each input shape included)", flush=True)

        fps: dict[str, list[float]] = {s: [] for s in SETTINGS}
        cpu: dict[str, list[float]] = {s: [] for s in SETTINGS}
        stages: dict[str, dict] = {}
        floors = []
        for round_ in range(args.rounds):
            for setting in SETTINGS:
                with tape.replaying(), all_on_the_stage_thread() if setting == "inline" else contextlib.nullcontext():
                    rate, stage_cpu, stages[setting], replayed = one_run(args.clip, out, params, engine)
                if tape.played != len(tape.outputs) or replayed != recorded:
                    print(f"  {setting}: the replay diverged ({tape.played} calls, counts {replayed} against {recorded})")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
