"""Where the time goes on a device, with a timestamp on every line: loading the engine, the first call of each
input shape against the later ones, and one clip as it runs.

    python bench/gpu_trace.py --clip DIR/mixed.mp4 [--device cuda] [--model-dir DIR] [--limit-s 130]

A first GPU run of bench/gpu.py (4 December) timed the networks alone and the transcode floor, then did not
finish Veil's first variant in the minutes it had left; this trace says whether one-time costs (cuDNN's
algorithm search per input shape, model loading) or the frames themselves take the time. The engine is
loaded twice: as shipped (cuDNN's exhaustive search for fixed-size inputs) and with the heuristic search
everywhere. It prints the calls per input shape (first, median, total) after each part, and stops itself
after ``--limit-s`` seconds, printing what it has. It asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import signal
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

with contextlib.suppress(ImportError):
    import torch  # noqa: F401  (loads the CUDA runtime libraries that onnxruntime-gpu looks for)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import onnxruntime as ort

import pipeline.detect.onnx as veil_onnx
from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.params import Params
from pipeline.video.process import process_video

from bench.gpu import time_network_runs

CALLS: dict[tuple, list[float]] = collections.defaultdict(list)


def say(*parts: object) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s]", *parts, flush=True)


def trace_calls(tags: dict[int, str]) -> None:
    """Time every ``run`` of onnxruntime, keyed by the session's tag and the input's shape."""

    def keep(session: ort.InferenceSession, feeds: dict, seconds: float) -> None:
        shapes = tuple(np.shape(value) for value in feeds.values())
        CALLS[(tags.get(id(session), "?"), *shapes)].append(seconds)

    time_network_runs(keep)


def report_calls(top: int = 14) -> None:
    for key, times in sorted(CALLS.items(), key=lambda kv: -sum(kv[1]))[:top]:
        say(key, f"calls {len(times)}, first {times[0] * 1000:.1f} ms, median {sorted(times)[len(times) // 2] * 1000:.2f} ms, "
                 f"total {sum(times):.2f} s")
    CALLS.clear()


class OutOfTime(Exception):
    pass


def out_of_time(*_: object) -> None:
    raise OutOfTime


def heuristic_search_everywhere() -> None:
    shipped = veil_onnx.providers_for
    veil_onnx.providers_for = lambda device, dynamic_input=False: shipped(device, dynamic_input=True)  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, required=True, help="a clip rendered by bench/gpu.py --render")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--limit-s", type=int, default=130)
    parser.add_argument("--out", type=Path, default=Path("/tmp/veil-gpu-trace"))
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(args.limit_s)
    tags: dict[int, str] = {}
    trace_calls(tags)
    say("imported; onnxruntime", ort.__version__, ort.get_available_providers())
    runtime = RuntimeParams(device=args.device, model_dir=args.model_dir)
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    try:
        for search in ("as shipped", "heuristic"):
            if search == "heuristic":
                heuristic_search_everywhere()
            engine = Engine.load(Params().detector, runtime)
            for loaded in engine._detectors:  # a benchmark looks inside
                tags[id(loaded.network.session)] = f"{loaded.spec.name}, {search}"  # type: ignore[attr-defined]
            say("engine loaded,", search)
            for call in range(3):
                engine.detect(frame)
                say(f"the photo plan on a 1080p frame, call {call + 1}")
            report_calls()
        progress = [0]

        def step() -> None:
            progress[0] += 1
            if progress[0] % 40 == 0:
                say(f"{progress[0]} progress calls (one per frame, one per batch of re-detection windows)")

        args.out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        report = process_video(args.clip, args.out / args.clip.name, Params(), engine, name=args.clip.name, progress=step)
        wall = time.perf_counter() - start
        say(f"{args.clip.name}: {report.video['frames_written']} frames, {report.video['frames_written'] / wall:.1f} fps,"
            f" stage seconds {({k: round(v, 2) for k, v in report.video['stage_seconds'].items()})}")
    except OutOfTime:
        say(f"stopped after {args.limit_s} s")
    finally:
        report_calls()
    return 0


if __name__ == "__main__":
    sys.exit(main())
