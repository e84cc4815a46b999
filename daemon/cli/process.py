"""``veil process INPUT... -o OUTDIR``: anonymize files and folders once, then exit."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.errors import ModelError
from pipeline.params import Params
from pipeline.qc import SIDECAR_SUFFIX, QCReport
from pipeline.run import process_file


@dataclass(frozen=True)
class Job:
    src: Path
    name: str  # relative path, kept in the output tree


DESCRIPTION = """Anonymize files and folders once, then exit: veil process INPUT... -o OUTDIR.

Folders are walked recursively; each output keeps its path relative to the INPUT it came from, its name and
its format, with <name>.veil.json (the QC sidecar) beside it. Two inputs that would be written to the same
output are refused before anything is processed. Every file ends as processed or failed: a file that cannot
be read or written (a full disk, a folder that cannot be written) is listed as failed with its reason, and
the other files are still processed. Exit status: 0 all processed, 1 some failed, 2 nothing was started."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("process", help="anonymize files and folders once", description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="files or folders (walked recursively)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR",
                        help="where the results and their sidecars go (created if missing)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (default: refuse, and fail that file)")
    parser.add_argument("--drop-audio", action="store_true",
                        help="leave videos' audio streams out (default: copied unchanged)")
    add_params_arguments(parser)
    parser.set_defaults(handler=run)


_SHIPPED = Params()


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detection and masking")
    group.add_argument("--profile", metavar="NAME",
                       help="start from this profile of the service's configuration (--config, else $VEIL_CONFIG or "
                            "/etc/veil/veil.toml), as `veil serve` runs it; the flags below change it (default: the "
                            "shipped settings; with --config alone, its 'default' profile)")
    group.add_argument("--config", type=Path, help="the service's configuration that --profile is read from")
    group.add_argument("--classes", help=f"comma-separated: face, license_plate (default: {','.join(_SHIPPED.detector.classes)})")
    group.add_argument("--style", choices=["blur", "mosaic", "solid"],
                       help=f"how regions are masked (default: {_SHIPPED.mask.style})")
    group.add_argument("--shape", choices=["box", "ellipse"], help=f"shape of the masked region (default: {_SHIPPED.mask.shape})")
    group.add_argument("--margin", type=float,
                       help=f"plates: grown on each side, share of size (default: {_SHIPPED.mask.margin})")
    group.add_argument("--face-margin", type=float,
                       help=f"faces: grown on each side after squaring, share of size (default: {_SHIPPED.mask.face_margin})")
    group.add_argument("--jpeg-quality", type=int,
                       help=f"quality of JPEG outputs, 1-100 (default: {_SHIPPED.output.jpeg_quality})")
    group.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    group.add_argument("--threads", type=int, default=0,
                       help="onnxruntime intra-op threads (default: %(default)s, all cores)")
    group.add_argument("--model-dir", type=Path, default=None,
                       help="folder with the detector models (default: the environment's share/veil/models)")



def params_from_arguments(args: argparse.Namespace) -> tuple[Params, RuntimeParams]:
    """The profile (``--profile``; else the shipped ``Params()``) with the flags given laid over it."""
    chosen = args.profile is not None or args.config is not None
    base = _profile(args.profile, args.config) if chosen else _SHIPPED
    flags: dict[str, dict[str, Any]] = {
        "detector": {"classes": None if args.classes is None else tuple(c.strip() for c in args.classes.split(",") if c.strip())},
        "mask": {"style": args.style, "shape": args.shape, "margin": args.margin, "face_margin": args.face_margin},
        "output": {"jpeg_quality": args.jpeg_quality},
        "video": {"audio": "drop" if getattr(args, "drop_audio", False) else None},  # a flag of process alone
    }
    given = {section: {key: value for key, value in keys.items() if value is not None} for section, keys in flags.items()}
    params = base.model_copy(update={
        section: getattr(base, section).model_validate({**getattr(base, section).model_dump(), **keys})
        for section, keys in given.items() if keys
    })
    return params, RuntimeParams(device=args.device, threads=args.threads, model_dir=args.model_dir)


def _profile(name: str | None, config: Path | None) -> Params:
    """A profile of the service's configuration. Imported here: the settings' libraries cost a plain run's start."""
    from daemon.cli.context import settings_for
    from daemon.config.settings import DEFAULT_PROFILE, SYSTEM_CONFIG, ConfigError

    name = name or DEFAULT_PROFILE
    try:
        settings = settings_for(config)
    except ConfigError as error:
        raise ValueError(str(error)) from None
    if settings is None:
        raise ValueError(f"--profile {name}: no configuration (give --config FILE, set $VEIL_CONFIG, or install "
                         f"{SYSTEM_CONFIG})")
    if name not in settings.profiles:
        raise ValueError(f"--profile {name}: not in the configuration (profiles: {', '.join(sorted(settings.profiles))})")
    return settings.profiles[name]


def load_from_arguments(args: argparse.Namespace) -> tuple[Params, Engine] | None:
    """The parameters and the loaded models, or None after saying on stderr why Veil cannot start."""
    try:
        params, runtime = params_from_arguments(args)
        return params, Engine.load(params.detector, runtime)
    except (ModelError, ValueError) as error:
        print(f"veil: cannot start: {error}", file=sys.stderr)
        return None


def collect_jobs(inputs: list[Path], unreadable: list[tuple[Path, str]] | None = None) -> list[Job]:
    """The files under ``inputs``; a folder that cannot be listed goes to ``unreadable`` with its reason."""
    jobs = []

    def walk_error(error: OSError) -> None:
        if unreadable is not None:
            unreadable.append((Path(error.filename or "?"), f"cannot list folder: {error.strerror or error}"))

    for root in inputs:
        if root.is_dir() and not root.is_symlink():
            # os.walk does not follow symlinked folders
            for directory, subdirs, files in os.walk(root, onerror=walk_error):
                subdirs.sort()
                for file_name in sorted(files):
                    path = Path(directory) / file_name
                    jobs.append(Job(path, path.relative_to(root).as_posix()))
        else:
            jobs.append(Job(root, root.name))
    return jobs


def collisions(jobs: list[Job]) -> list[str]:
    """Inputs that would be written to one output (or one's output onto another's sidecar), one line each."""
    owners: dict[str, Job] = {}
    lines = []
    for job in jobs:
        for written in (job.name, job.name + SIDECAR_SUFFIX):
            key = os.path.normcase(os.path.normpath(written))
            other = owners.setdefault(key, job)
            if other is not job and other.src != job.src:
                lines.append(f"{other.src} and {job.src} would both be written to {written}")
                break
    return lines


def _write_sidecar(path: Path, text: str) -> None:
    """The sidecar goes last (its presence says the output beside it is complete)."""
    path.write_text(text)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def process_one(job: Job, output: Path, overwrite: bool, params: Params, engine: Engine) -> QCReport | str:
    """Process one file into ``output``: its report, or why it could not even be attempted. Never raises
    OSError: a full disk or a folder that cannot be written fails this file, not the run."""
    target = output / job.name
    sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
    partial = target.with_name(f".{target.stem}.veil-partial{target.suffix}")
    report: QCReport | None = None
    try:
        if not overwrite and (target.exists() or sidecar.exists()):
            return f"output {target} already exists (use --overwrite)"
        target.parent.mkdir(parents=True, exist_ok=True)
        report = process_file(job.src, partial, params, engine, name=job.name)
        if report.disposition != "failed":
            published = []
            for companion in report.companions:  # named after the partial file: carry the suffix over
                final = target.name + companion.removeprefix(partial.name)
                os.replace(partial.with_name(companion), target.with_name(final))
                published.append(final)
            report.companions = published
            os.replace(partial, target)
        _write_sidecar(sidecar, report.to_json())
        return report
    except OSError as error:
        _remove_quietly(partial)
        where = f" {error.filename}" if error.filename else ""
        reason = f"cannot write{where}: {error.strerror or error}"
        if report is not None and report.disposition == "failed" and report.error is not None:
            reason = f"{report.error.message}; and {reason}"
        return reason


def run(args: argparse.Namespace) -> int:
    unreadable: list[tuple[Path, str]] = []
    jobs = collect_jobs(args.inputs, unreadable)
    if clashes := collisions(jobs):
        for line in clashes:
            print(f"veil process: refused: {line}", file=sys.stderr)
        print("veil process: nothing was processed; process such inputs in separate runs or output folders",
              file=sys.stderr)
        return 2
    if (loaded := load_from_arguments(args)) is None:
        return 2
    params, engine = loaded
    failures: list[tuple[Path, str]] = list(unreadable)
    reviews: list[tuple[Path, str]] = []
    progress = tqdm(jobs, unit="file", disable=not sys.stderr.isatty())
    for job in progress:
        result = process_one(job, args.output, args.overwrite, params, engine)
        if isinstance(result, str):
            failures.append((job.src, result))
        elif result.disposition == "failed":
            failures.append((job.src, result.error.message if result.error else "unknown error"))
        elif result.disposition == "review":
            reviews.append((job.src, "; ".join(result.review_reasons) or "in the review band"))
    progress.close()
    done = len(jobs) + len(unreadable) - len(failures)
    total = len(jobs) + len(unreadable)
    print(f"veil: {done} of {total} file(s) processed, {len(reviews)} flagged for review, {len(failures)} failed")
    for src, reason in reviews:
        print(f"REVIEW {src}: {reason}")
    for src, message in failures:
        print(f"FAILED {src}: {message}", file=sys.stderr)
    return 1 if failures else 0
