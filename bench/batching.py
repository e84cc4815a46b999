"""Batched network calls and the graph's own pixel conversion, against one window a call, in the same run.

    python bench/batching.py [--device cpu|cuda] [--photos N]

Prints, on the device asked for:

1. The networks alone: milliseconds per window at batch 1, 2, 4 and 8 (16 and 32 on a GPU), and the ratio to
   batch 1, for platedet (640x640 windows), CenterFace on 384x384 re-detection windows and on 1920x1088 frames.
2. The host conversion the graph now does itself (pipeline/detect/frontend.py): what numpy spent per call
   on the stored inputs (platedet's float16 640x640, its GPU path, and float32, its CPU path; CenterFace's
   planar float32 1920x1088), against handing over the uint8 pixels.
3. The engine on real photos (every class, the shipped plans): seconds per photo and peak memory at
   ``max_batch`` 1 (the shipped default) and 8, each in a process of its own, and whether the detections agree.

It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np

from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.params import Params

SIZES = {"platedet": [(640, 640)], "centerface": [(384, 384), (1088, 1920)]}


def per_window_ms(engine: Engine, batches: tuple[int, ...], repeats: int) -> dict[str, dict[int, float]]:
    """Milliseconds per window of each network alone, by batch size, on random pixels of each size."""
    rng = np.random.default_rng(0)
    timings: dict[str, dict[int, float]] = {}
    for detector in engine._detectors:  # a benchmark looks inside
        for height, width in SIZES.get(detector.spec.name, []):
            images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(max(batches))]
            row = timings[f"{detector.spec.name} {width}x{height}"] = {}
            for batch in batches:
                detector.network.batch(images[:batch], 0.5)  # warm: the first run of a shape plans memory
                start = time.perf_counter()
                for _ in range(repeats):
                    detector.network.batch(images[:batch], 0.5)
                row[batch] = round((time.perf_counter() - start) / (repeats * batch) * 1000, 2)
    return timings


def host_conversion_ms(repeats: int = 20) -> dict[str, float]:
    """What the host spent converting each call's pixels before the graph took bytes, and what it spends now.
    platedet's stored input is float16 (its path on a GPU); int8 on the CPU took float32."""
    rng = np.random.default_rng(0)
    plate = rng.integers(0, 256, (640, 640, 3), dtype=np.uint8)
    frame = rng.integers(0, 256, (1088, 1920, 3), dtype=np.uint8)

    def timed(convert) -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            convert()
        return round((time.perf_counter() - start) / repeats * 1000, 2)

    def planar_frame() -> None:
        blob = np.zeros((1, 3, 1088, 1920), dtype=np.float32)
        blob[0] = frame.transpose(2, 0, 1)

    return {
        "platedet 640x640, host float16 (GPU)": timed(
            lambda: plate.transpose(2, 0, 1)[None].astype(np.float16) / np.float16(255)),
        "platedet 640x640, host float32 (CPU, int8)": timed(
            lambda: plate.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)),
        "platedet 640x640, uint8 handed over": timed(lambda: plate[None].copy()),
        "centerface 1920x1088, host float32 planar": timed(planar_frame),
        "centerface 1920x1088, uint8 handed over": timed(lambda: frame[None].copy()),
    }


def photo_run(runtime: RuntimeParams, files: list[str], queue: multiprocessing.Queue) -> None:
    """In a process of its own, so its peak memory is its own: the engine over the photos."""
    from pipeline.media.image import load_image

    engine = Engine.load(Params().detector, runtime)
    photos = [load_image(Path(f), 40_000_000).rgb for f in files]
    engine.detect(photos[0])
    start = time.perf_counter()
    found = [engine.detect(rgb) for rgb in photos]
    seconds = (time.perf_counter() - start) / len(photos)
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:"))
    queue.put({"s_per_photo": round(seconds, 3), "peak_mib": peak // 1024,
               "found": [np.round(np.c_[d.boxes, d.scores, d.classes], 2).tolist() for d in found]})


def engine_runs(runtime: RuntimeParams, files: list[str]) -> dict[int, dict]:
    context = multiprocessing.get_context("spawn")
    results = {}
    for max_batch in (1, 8):
        queue = context.Queue()
        batched = runtime.model_copy(update={"max_batch": max_batch})
        process = context.Process(target=photo_run, args=(batched, files, queue))
        process.start()
        results[max_batch] = queue.get()
        process.join()
    return results


def sample_photos(eval_root: Path, count: int) -> list[str]:
    files = []
    for name in ("openalpr_endtoend", "rbnr_faces"):
        folder = eval_root / name
        images = json.loads((folder / "annotations.json").read_text())["images"]
        step = max(1, len(images) // count)
        files += [str(folder / "images" / info["file_name"]) for info in images[::step][: count // 2]]
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--photos", type=int, default=8, help="real photos for the engine runs")
    parser.add_argument("--eval-root", type=Path, default=REPO / ".." / "shared" / "eval")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--photos-only", action="store_true", help="only part 3 (bench/gpu.py times the networks)")
    args = parser.parse_args()
    gpu = args.device != "cpu"
    batches = (1, 2, 4, 8, 16, 32) if gpu else (1, 2, 4, 8)

    runtime = RuntimeParams(device=args.device, model_dir=args.model_dir)
    if not args.photos_only:
        networks_and_conversion(runtime, batches=batches, repeats=20 if gpu else 3)
    if not (args.eval_root / "openalpr_endtoend" / "annotations.json").is_file():
        print(f"3. skipped: no evaluation data under {args.eval_root}")
        return 0
    files = sample_photos(args.eval_root, args.photos)
    runs = engine_runs(runtime, files)
    same = all(np.allclose(a, b, atol=0.02) if np.shape(a) == np.shape(b) else False
               for a, b in zip(runs[1]["found"], runs[8]["found"]))
    print(f"3. the engine on {len(files)} real photos, every class, shipped plans:")
    for max_batch, run in runs.items():
        print(f"   max_batch {max_batch}: {run['s_per_photo']:.3f} s a photo, peak {run['peak_mib']} MiB")
    ratio = runs[1]["s_per_photo"] / runs[8]["s_per_photo"]
    print(f"   max_batch 8 is {ratio:.2f}x the speed of 1, {runs[8]['peak_mib'] - runs[1]['peak_mib']:+d} MiB; "
          f"same detections: {same}")
    return 0


def networks_and_conversion(runtime: RuntimeParams, *, batches: tuple[int, ...], repeats: int) -> None:
    """Parts 1 and 2: the networks alone by batch size, and the input conversion the graph took over."""
    engine = Engine.load(Params().detector, runtime)
    print(f"1. networks alone on {runtime.device}: ms per window by batch size (ratio to batch 1)", flush=True)
    for name, row in per_window_ms(engine, batches, repeats).items():
        cells = "  ".join(f"b{b} {ms:7.2f} ({row[1] / ms:4.2f}x)" for b, ms in row.items())
        print(f"   {name:24} {cells}", flush=True)

    print("2. the input's conversion per call, ms (now done by the graph, pipeline/detect/frontend.py)")
    for name, ms in host_conversion_ms().items():
        print(f"   {name:44} {ms:7.2f}")


if __name__ == "__main__":
    sys.exit(main())
