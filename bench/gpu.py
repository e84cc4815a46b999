"""GPU benchmark: Veil end to end on 1080p clips with the CUDA execution provider, next to the transcode floor.

    python bench/gpu.py --render DIR            # here: render the clips and their ground truth into DIR
    python bench/gpu.py --clips DIR [--cpu]     # on the GPU machine (bench/README.md, "gpu.py")

In one run, on each clip (1920x1080, moving camera, per-frame ground truth from pipeline/eval/video.py):

- the floor: the same decode, colour conversions and encode as Veil (``pipeline.media.video.transcode``
  with a stage that masks nothing), at Veil's codec settings, with its busy share per stage;
- Veil, faces and plates, on CUDA: the defaults (float32, detection stride 2, the classes' detectors side by
  side on threads of their own), the classes in turn on one thread, up to 8 images (windows or frames) a
  network call (``max_batch``), fp16, stride 1, and the x264 preset superfast (against its own floor); with
  ``--cpu`` also the defaults on the CPU provider, and there the classes side by side;
- per variant: frames/s, the ratio to the floor, mask recall on the ground truth, and the busy share of the
  wall time per stage (decode, to_rgb, detect, plan, mask, to_yuv, encode: they overlap on threads, so the
  shares add up to more than 100%) so the next bottleneck is known, and of onnxruntime's ``run`` calls within
  detect ("networks"); and the detection thread's CPU time per frame, which every frame waits for
  (``bench/host_ceiling.py``; on the CPU provider it includes the networks' work on that thread);
- several streams on one GPU (``--streams``, default 2 and 4): as many worker processes as streams, each
  with its own models on the same device (what ``workers = N`` with ``devices = ["cuda"]`` runs), each
  masking the clip; frames/s summed over the streams, from the moment all have loaded their models; and the
  same number of streams on threads of one process, sharing one engine, without and with shared batches
  (the threads' concurrent calls on one input shape run as one batch: ``pipeline/detect/shared_batches.py``);
  with the lowest mask recall among the streams, scored after the clock stopped;
- the models alone: milliseconds per window by batch size (1 to 32) at 640 (platedet), 384 and 1920x1088
  (CenterFace), fp32 and fp16, from ``bench/batching.py``.

It asserts nothing. torch is imported first when present: its CUDA libraries are the ones onnxruntime-gpu
then loads (``onnxruntime.preload_dlls``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

with contextlib.suppress(ImportError):
    import torch  # noqa: F401  (loads the CUDA runtime libraries that onnxruntime-gpu looks for)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import onnxruntime as ort

from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.detect.shared_batches import SharedBatches
from pipeline.eval.mixed_scenes import build_mixed_set
from pipeline.eval.video import GroundTruth, Motion, load_specs, render_clip, score_clip
from pipeline.eval.video_summary import ClipResult
from pipeline.params import Params, VideoParams
from pipeline.records import ObjectClass
from pipeline.timing import StageClock
from pipeline.video.process import process_video

from bench.batching import per_window_ms
from bench.transcode_floor import floor_fps

SIZE = (1920, 1080)
SHARED_BATCH = 8  # images a shared run takes at most: plate windows cost 2.6 times less each at 4 on the H200
STARTED = time.perf_counter()


def say(line: str) -> None:
    """A result line, stamped with the seconds since the start: a run cut at its time limit shows where the
    time went."""
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {line}", flush=True)


PHOTOS = (("rbnr_faces", ObjectClass.FACE), ("openalpr_endtoend", ObjectClass.LICENSE_PLATE))


def render(folder: Path, frames: int, eval_root: Path) -> None:
    """One clip per photo set, and one of a mixed scene: faces and a plate on screen together."""
    folder.mkdir(parents=True, exist_ok=True)
    both = (ObjectClass.FACE, ObjectClass.LICENSE_PLATE)
    with tempfile.TemporaryDirectory() as scratch:
        mixed = build_mixed_set(eval_root, Path(scratch), count={"openalpr_endtoend": 6}, seed=5,
                                plate_sets=("openalpr_endtoend",))
        for name, set_dir, classes in [*((name, eval_root / name, (c,)) for name, c in PHOTOS),
                                       ("mixed", mixed.parent, both)]:
            specs = [s for s in load_specs(set_dir, classes) if {int(c) for c in s.classes} == {int(c) for c in classes}]
            spec = specs[len(specs) // 2]
            clip = folder / f"{name}.mp4"
            truth = render_clip(spec, clip, size=SIZE, frames=frames, seed=5, motion=Motion(crf=20))
            truth.save(clip.with_suffix(".gt.json"))
            print(f"rendered {clip} ({frames} frames of {spec.photo.name}, {len(spec.boxes)} boxes)")


def time_network_runs(record: Callable[[ort.InferenceSession, dict, float], None]) -> None:
    """Time every ``run`` of onnxruntime, from any thread: ``record(session, feeds, seconds)``. A benchmark
    patches."""
    run = ort.InferenceSession.run

    def timed(self, output_names, feeds, *args, **kwargs):
        start = time.perf_counter()
        try:
            return run(self, output_names, feeds, *args, **kwargs)
        finally:
            record(self, feeds, time.perf_counter() - start)

    ort.InferenceSession.run = timed  # type: ignore[method-assign]


class NetworkClock:
    """Seconds spent inside onnxruntime's ``run`` (the networks, with their copies to and from the device), so
    the detect stage splits into the networks and the host's own work around them."""

    seconds = 0.0

    @classmethod
    def install(cls) -> None:
        def add(_session: ort.InferenceSession, _feeds: dict, seconds: float) -> None:
            cls.seconds += seconds

        time_network_runs(add)


def floor_with_shares(clip: Path, params: Params, out: Path) -> tuple[float, dict[str, float]]:
    """The transcode with nothing masked: frames/s, and the busy share of the wall time per stage."""
    clock = StageClock()
    fps, wall = floor_fps(clip, params.video, out, clock)
    return fps, {stage: round(seconds / wall, 3) for stage, seconds in clock.seconds().items()}


def run_veil(clip: Path, params: Params, engine: Engine, out: Path) -> dict:
    for leftover in out.parent.glob(out.name + "*"):
        leftover.unlink()
    NetworkClock.seconds = 0.0
    start, cpu = time.perf_counter(), time.thread_time()  # the detection thread is this one
    report = process_video(clip, out, params, engine, name=clip.name)
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    stages = {**report.video["stage_seconds"], "networks": NetworkClock.seconds}
    if report.disposition == "failed":
        raise SystemExit(f"veil failed on {clip.name}: {report.error}")
    scored = clip_score(clip, out, params)
    frames = report.video["frames_written"]
    return {
        "frames": frames, "wall_s": round(wall, 2), "fps": round(frames / wall, 2),
        "recall": round(scored.recall, 4), "box_frames": scored.box_frames,
        "longest_unmasked": max(scored.longest_unmasked_run.values(), default=0),
        "stage_share": {k: round(v / wall, 3) for k, v in stages.items()},
        "detection_thread_cpu_ms": round(1000 * cpu / frames, 2),  # what every frame waits for, on the host
        "providers": sorted({p for m in report.models for p in m.providers}),
    }


def clip_score(clip: Path, out: Path, params: Params) -> ClipResult:
    """Both classes' mask recall on the clip's ground truth, from the boxes companion of Veil's ``out``."""
    truth = GroundTruth.load(clip.with_suffix(".gt.json"))
    classes = (ObjectClass.FACE, ObjectClass.LICENSE_PLATE)
    return score_clip(clip.name, truth, out.with_name(out.name + ".boxes.jsonl.gz"), params.mask, classes)


def stream_worker(clip: Path, out: Path, runtime: RuntimeParams, ready: multiprocessing.synchronize.Barrier,
                  queue: multiprocessing.Queue) -> None:
    """One stream: its own models on the device, then the clip, once every stream has loaded."""
    engine = warmed_engine(runtime)
    ready.wait()
    report = process_video(clip, out, Params(), engine, name=clip.name)
    queue.put(report.video["frames_written"] if report.disposition != "failed" else 0)


def streams_fps(clip: Path, count: int, runtime: RuntimeParams, out: Path) -> dict:
    """``count`` worker processes on one device, each masking ``clip``: frames/s summed over them."""
    context = multiprocessing.get_context("spawn")
    ready, queue = context.Barrier(count + 1), context.Queue()
    workers = [context.Process(target=stream_worker, args=(clip, out / f"stream{i}-{clip.name}", runtime, ready, queue))
               for i in range(count)]
    for worker in workers:
        worker.start()
    ready.wait()
    start = time.perf_counter()
    frames = [queue.get() for _ in workers]
    wall = time.perf_counter() - start
    for worker in workers:
        worker.join()
    return streams_row(frames, wall, [out / f"stream{i}-{clip.name}" for i in range(count)], clip)


def threaded_streams_fps(clip: Path, count: int, engine: Engine, out: Path) -> dict:
    """``count`` videos on threads of one process sharing one engine: one set of sessions on the device, whose
    calls onnxruntime takes from any thread; frames/s summed over them."""
    frames = [0] * count

    def one(slot: int) -> None:
        report = process_video(clip, out / f"thread{slot}-{clip.name}", Params(), engine, name=clip.name)
        frames[slot] = report.video["frames_written"] if report.disposition != "failed" else 0

    threads = [threading.Thread(target=one, args=(slot,)) for slot in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return streams_row(frames, wall, [out / f"thread{slot}-{clip.name}" for slot in range(count)], clip)


def warmed_engine(runtime: RuntimeParams, shared_batches: int = 0) -> Engine:
    """The shipped detector on ``runtime``, warmed up at the clips' size (first-call costs left out of the
    timings); ``shared_batches``: see ``Engine.load``."""
    engine = Engine.load(Params().detector, runtime, shared_batches=shared_batches)
    engine.detect(np.zeros((SIZE[1], SIZE[0], 3), dtype=np.uint8))
    return engine


def shared_runs(engine: Engine) -> dict:
    """Of an engine with shared batches, the calls so far and the network runs they took; else nothing."""
    sessions = [detector.network.session for detector in engine._detectors]  # type: ignore[attr-defined]
    shared = [session for session in sessions if isinstance(session, SharedBatches)]
    if not shared:
        return {}
    return {"calls": sum(s.calls for s in shared), "runs": sum(s.runs for s in shared)}


def streams_row(frames: list[int], wall: float, outputs: list[Path], clip: Path) -> dict:
    """The row for several streams at once, from the frames of each (0: the stream failed), the wall time
    and the streams' outputs: the lowest recall among them, scored after the clock stopped."""
    recalls = [clip_score(clip, out, Params()).recall for out, done in zip(outputs, frames) if done]
    return {"streams": len(frames), "frames": sum(frames), "wall_s": round(wall, 2),
            "fps_summed": round(sum(frames) / wall, 2), "failed": sum(1 for f in frames if not f),
            "recall_min": round(min(recalls), 4) if recalls else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render", type=Path, help="render the clips and ground truth into this folder, then stop")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--eval-root", type=Path, default=REPO / ".." / "shared" / "eval")
    parser.add_argument("--clips", type=Path, help="folder of rendered clips (*.mp4 with *.gt.json)")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cpu", action="store_true", help="also the defaults on the CPU provider")
    parser.add_argument("--streams", type=lambda text: [int(n) for n in text.split(",") if n], default=[2, 4],
                        help="concurrent streams to measure, comma-separated ('' for none)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/veil-gpu-bench"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip-models", action="store_true", help="leave out the networks alone by batch size")
    args = parser.parse_args()
    if args.render:
        render(args.render, args.frames, args.eval_root)
        return 0
    if not args.clips:
        parser.error("--clips or --render is needed")

    NetworkClock.install()
    gpu = RuntimeParams(device=args.device, model_dir=args.model_dir)
    on = args.device.split(":")[0]
    variants = {
        f"{on} stride 2 (default)": (Params(), gpu),
        f"{on} stride 2 classes in turn": (Params(), gpu.model_copy(update={"classes_side_by_side": False})),
        f"{on} stride 2 max_batch 8": (Params(), gpu.model_copy(update={"max_batch": 8})),
        f"{on} stride 2 fp16": (Params(), gpu.model_copy(update={"precision": "fp16"})),
        f"{on} stride 1": (Params(video=VideoParams(detect_stride=1)), gpu),
        f"{on} stride 2 superfast": (Params(video=VideoParams(preset="superfast")), gpu),
    }
    if args.cpu:
        cpu = RuntimeParams(model_dir=args.model_dir)
        variants["cpu stride 2 (default)"] = (Params(), cpu)
        variants["cpu stride 2 classes side by side"] = (Params(), cpu.model_copy(update={"classes_side_by_side": True}))
    engines: dict[str, Engine] = {}
    results: dict = {"models_ms": {}, "clips": {}}
    networks: dict[str, Engine] = {}  # by what loads the networks: max_batch and the threads change none
    for runtime in {r.model_dump_json(): r for _, r in variants.values()}.values():
        key = runtime.model_copy(update={"max_batch": 1, "classes_side_by_side": None}).model_dump_json()
        if key not in networks:
            networks[key] = warmed_engine(runtime)
        loaded = networks[key]
        engine = Engine(loaded._detectors, loaded.params, max_batch=runtime.max_batch,
                        classes_side_by_side=runtime.side_by_side)
        engines[runtime.model_dump_json()] = engine
        label = f"{runtime.device} {'/'.join(sorted({r.precision for r in engine.model_records}))}"
        say(f"engine ready: {label}, max_batch {runtime.max_batch}, classes side by side {runtime.side_by_side}")
        if label in results["models_ms"] or args.skip_models:
            continue  # max_batch changes no network
        on_gpu = runtime.device != "cpu"
        results["models_ms"][label] = per_window_ms(engine, (1, 2, 4, 8, 16, 32) if on_gpu else (1, 4), 20 if on_gpu else 2)
        say(f"models alone, {label}, ms per window by batch size: {results['models_ms'][label]}")

    ways = {"threads of one process, one engine": engines[gpu.model_dump_json()]}
    if args.streams:
        ways["threads of one process, one engine, shared batches"] = warmed_engine(gpu, SHARED_BATCH)
    args.out.mkdir(parents=True, exist_ok=True)
    for clip in sorted(args.clips.glob("*.mp4")):
        presets = sorted({params.video.preset for params, _ in variants.values()})
        floors, floor_shares = {}, {}
        for preset in presets:
            fps, floor_shares[preset] = floor_with_shares(clip, Params(video=VideoParams(preset=preset)), args.out / f"floor-{clip.name}")
            floors[preset] = round(fps, 2)
        rows: dict = {"transcode floor": floors, "transcode floor stage share": floor_shares}
        say(f"{clip.name}: transcode floor (x264 preset: fps) {floors}; busy share per stage {floor_shares}")
        for name, (params, runtime) in variants.items():
            row = run_veil(clip, params, engines[runtime.model_dump_json()], args.out / f"{name.split()[0]}-{clip.name}")
            row["of_floor"] = round(row["fps"] / floors[params.video.preset], 3)
            rows[name] = row
            results["clips"][clip.name] = rows
            save(results, args.json)
            shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(row["stage_share"].items(), key=lambda kv: -kv[1]))
            say(f"  {name:34} {row['fps']:7.2f} fps  {row['of_floor']:.2f} of floor  recall {row['recall']:.4f} "
                f"({row['box_frames']} box-frames, longest unmasked {row['longest_unmasked']})  "
                f"detection thread CPU {row['detection_thread_cpu_ms']} ms a frame  busy: {shares}")
        one_floor = floors[Params().video.preset]
        for count in args.streams:
            for way in ("one process each", *ways):
                if way == "one process each":
                    row = streams_fps(clip, count, gpu, args.out)
                else:
                    before = shared_runs(ways[way])
                    row = threaded_streams_fps(clip, count, ways[way], args.out)
                    row.update({key: value - before[key] for key, value in shared_runs(ways[way]).items()})
                rows[f"{count} streams, {way}"] = row
                save(results, args.json)
                shared = f", {row['calls']} calls in {row['runs']} runs" if "runs" in row else ""
                say(f"  {count} streams, {way}: {row['fps_summed']:7.2f} fps summed "
                    f"({row['fps_summed'] / one_floor:.2f} of one floor), {row['failed']} failed, "
                    f"lowest recall {row['recall_min']}{shared}")
        results["clips"][clip.name] = rows
        save(results, args.json)
    return 0


def save(results: dict, path: Path | None) -> None:
    """After each row, so a run stopped at its time limit still leaves what it measured."""
    if path:
        path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
