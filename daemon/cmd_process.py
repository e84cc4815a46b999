"""``veil process INPUT... -o OUTDIR``: anonymize files and folders once, then exit."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from pipeline.engine import Engine
from pipeline.errors import ModelError
from pipeline.params import DetectorParams, MaskParams, OutputParams, Params, RuntimeParams
from pipeline.qc import SIDECAR_SUFFIX
from pipeline.run import process_file


@dataclass(frozen=True)
class Job:
    src: Path
    name: str  # relative path, kept in the output tree


def register(subparsers) -> None:
    parser = subparsers.add_parser("process", help="anonymize files and folders once", description=__doc__)
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="files or folders (walked recursively)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: refuse)")
    add_params_arguments(parser)
    parser.set_defaults(handler=run)


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detection and masking")
    group.add_argument("--classes", default="face,license_plate", help="comma-separated: face, license_plate")
    group.add_argument("--style", choices=["blur", "mosaic", "solid"], default="blur")
    group.add_argument("--shape", choices=["box", "ellipse"], default="box")
    group.add_argument("--margin", type=float, default=MaskParams().margin,
                       help="plates: grown on each side, share of size")
    group.add_argument("--face-margin", type=float, default=MaskParams().face_margin,
                       help="faces: grown on each side after squaring, share of size")
    group.add_argument("--jpeg-quality", type=int, default=OutputParams().jpeg_quality)
    group.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    group.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: all cores)")
    group.add_argument("--model-dir", type=Path, default=None)


def params_from_arguments(args: argparse.Namespace) -> tuple[Params, RuntimeParams]:
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    params = Params(
        detector=DetectorParams(classes=classes),
        mask=MaskParams(style=args.style, shape=args.shape, margin=args.margin, face_margin=args.face_margin),
        output=OutputParams(jpeg_quality=args.jpeg_quality),
    )
    return params, RuntimeParams(device=args.device, threads=args.threads, model_dir=args.model_dir)


def load_from_arguments(args: argparse.Namespace) -> tuple[Params, Engine] | None:
    """The parameters and the loaded models, or None after saying on stderr why Veil cannot start."""
    try:
        params, runtime = params_from_arguments(args)
        return params, Engine.load(params.detector, runtime)
    except (ModelError, ValueError) as error:
        print(f"veil: cannot start: {error}", file=sys.stderr)
        return None


def collect_jobs(inputs: list[Path]) -> list[Job]:
    jobs = []
    for root in inputs:
        if root.is_dir() and not root.is_symlink():
            for directory, subdirs, files in os.walk(root):  # os.walk does not follow symlinked folders
                subdirs.sort()
                for file_name in sorted(files):
                    path = Path(directory) / file_name
                    jobs.append(Job(path, path.relative_to(root).as_posix()))
        else:
            jobs.append(Job(root, root.name))
    return jobs


def run(args: argparse.Namespace) -> int:
    if (loaded := load_from_arguments(args)) is None:
        return 2
    params, engine = loaded
    jobs = collect_jobs(args.inputs)
    failures, reviews = [], 0
    progress = tqdm(jobs, unit="file", disable=not sys.stderr.isatty())
    for job in progress:
        target = args.output / job.name
        sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
        if not args.overwrite and (target.exists() or sidecar.exists()):
            failures.append((job, f"output {target} already exists (use --overwrite)"))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.stem}.veil-partial{target.suffix}")
        report = process_file(job.src, partial, params, engine, name=job.name)
        if report.disposition != "failed":
            published = []
            for companion in report.companions:  # named after the partial file: carry the suffix over
                final = target.name + companion.removeprefix(partial.name)
                os.replace(partial.with_name(companion), target.with_name(final))
                published.append(final)
            report.companions = published
            os.replace(partial, target)
        else:
            failures.append((job, report.error.message if report.error else "unknown error"))
        reviews += report.disposition == "review"
        sidecar.write_text(report.to_json())
    progress.close()
    done = len(jobs) - len(failures)
    print(f"veil: {done} of {len(jobs)} file(s) processed, {reviews} flagged for review, {len(failures)} failed")
    for job, message in failures:
        print(f"FAILED {job.src}: {message}", file=sys.stderr)
    return 1 if failures else 0
