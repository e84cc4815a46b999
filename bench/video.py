"""Video benchmark: Veil's video throughput at 720p and 1080p, next to deface 1.5.0 on the same clips.

    .venv/bin/python bench/video.py [--frames 60] [--quick]

1. Renders two moving-camera clips (1280x720 and 1920x1080, 30 fps, H.264) from an annotated photo of
   ../shared/eval with the evaluation's camera (pan, zoom, shake, shutter blur), plus a one-frame clip of
   each size for start-up.
2. Veil runs in this process with the engine loaded and warmed up beforehand: ``process_video`` on each clip
   (decode, detect, track, plan, mask, encode, audio remux, companion), wall and CPU time. Variants: the
   default (faces and plates, every frame), faces only (the job deface does), and faces and plates with
   detection stride 3.
3. deface runs as its command line, in its own venv (bench/anchor.py): on the clip and on the one-frame clip;
   its steady-state rate is (frames - 1) / (time(clip) - time(one frame)), so its start-up is not counted
   against it either. deface does no tracking and no plates: it is a speed reference only.

It prints a table and ratios measured in this run, and asserts nothing. Other work on the machine shifts
absolute numbers; the ratios of one run are the figures to read.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import anchor  # noqa: E402  (bench/ is a folder of scripts, not a package)

from pipeline.engine import Engine  # noqa: E402
from pipeline.params import DetectorParams, Params, RuntimeParams, VideoParams  # noqa: E402
from pipeline.records import ObjectClass  # noqa: E402
from pipeline.video import process_video  # noqa: E402
from pipeline.video_eval import Motion, load_specs, render_clip  # noqa: E402

EVAL_ROOT = REPO / ".." / "shared" / "eval"
WORK = anchor.WORK / "video"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
PHOTO = ("rbnr_faces", 0)  # the first rbnr photo with at least MIN_FACES labelled faces
MIN_FACES = 2


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def make_clips(frames: int) -> dict[str, tuple[Path, Path]]:
    """Per size: (the clip, a one-frame clip of the same size)."""
    specs = [s for s in load_specs(EVAL_ROOT / PHOTO[0], (ObjectClass.FACE,)) if len(s.boxes) >= MIN_FACES]
    spec = specs[PHOTO[1]]
    clips = {}
    for label, size in SIZES.items():
        folder = WORK / "clips" / label
        folder.mkdir(parents=True, exist_ok=True)
        clip, single = folder / f"clip{frames}.mp4", folder / "single.mp4"
        if not clip.exists():
            render_clip(spec, clip, size=size, frames=frames, seed=3, motion=Motion(crf=20))
        if not single.exists():
            render_clip(spec, single, size=size, frames=1, seed=3, motion=Motion(crf=20))
        clips[label] = (clip, single)
    print(f"clips: {frames} frames of {spec.photo.name} ({len(spec.boxes)} labelled faces), "
          f"rendered with the evaluation camera", flush=True)
    return clips


def run_veil(clip: Path, params: Params, engine: Engine, out: Path) -> tuple[float, float, int]:
    out.parent.mkdir(parents=True, exist_ok=True)
    for leftover in out.parent.glob(out.name + "*"):
        leftover.unlink()
    wall, cpu = time.perf_counter(), cpu_seconds()
    report = process_video(clip, out, params, engine, name=clip.name)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    if report.disposition == "failed":
        raise SystemExit(f"veil failed on {clip}: {report.error}")
    return wall, cpu, report.video["frames_written"]


def run_deface(deface: anchor.Deface, clip: Path, out: Path) -> tuple[float, float]:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    cpu = children_cpu_seconds()
    wall = time.perf_counter()
    subprocess.run([str(deface.executable), str(clip), "-o", str(out)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - wall, children_cpu_seconds() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="20 frames, no stride variant")
    parser.add_argument("--deface", choices=sorted(anchor.VARIANTS), default="ort",
                        help="deface variant: 'ort' (onnxruntime, as Veil) or 'plain' (OpenCV DNN)")
    args = parser.parse_args()
    frames = 20 if args.quick else args.frames
    if not (EVAL_ROOT / "README.md").exists():
        print(f"bench/video.py: needs the evaluation data at {EVAL_ROOT}", file=sys.stderr)
        return 2

    clips = make_clips(frames)
    deface = anchor.ensure_deface(args.deface)
    print(f"deface: {deface.packages()}")
    print(f"machine: {os.cpu_count()} cores; veil: onnxruntime CPU, default threads\n", flush=True)

    variants = {
        "veil faces+plates": Params(),
        "veil faces only": Params(detector=DetectorParams(classes=("face",))),
    }
    if not args.quick:
        variants["veil faces+plates stride 3"] = Params(video=VideoParams(detect_stride=3))
    engines = {}
    for params in variants.values():
        key = params.detector.classes
        if key not in engines:
            engines[key] = Engine.load(params.detector, RuntimeParams())
            engines[key].warm_up()

    rows = []
    for label, (clip, single) in clips.items():
        for name, params in variants.items():
            wall, cpu, written = run_veil(clip, params, engines[params.detector.classes], WORK / "out" / label / name.replace(" ", "_") / clip.name)
            rows.append((label, name, written, wall, cpu, written / wall))
            print(f"{label:6} {name:28} {written:4} frames {wall:7.1f} s wall {cpu:7.1f} s cpu {written / wall:6.2f} fps", flush=True)
        whole, whole_cpu = run_deface(deface, clip, WORK / "out" / label / "deface" / clip.name)
        start, _ = run_deface(deface, single, WORK / "out" / label / "deface" / single.name)
        steady = (frames - 1) / max(whole - start, 1e-6)
        rows.append((label, f"deface ({args.deface})", frames, whole, whole_cpu, steady))
        print(f"{label:6} {'deface (' + args.deface + ')':28} {frames:4} frames {whole:7.1f} s wall {whole_cpu:7.1f} s cpu "
              f"{steady:6.2f} fps steady ({start:.1f} s for one frame, start-up included)", flush=True)

    print("\nthroughput ratio against deface on the same clip (higher is faster):")
    for label in clips:
        base = next(r for r in rows if r[0] == label and r[1].startswith("deface"))[5]
        for row in (r for r in rows if r[0] == label and not r[1].startswith("deface")):
            print(f"  {label:6} {row[1]:28} {row[5]:6.2f} fps = {row[5] / base:5.2f} x deface ({base:.2f} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
