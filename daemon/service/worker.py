"""The worker process: loads its engine(s) once, warms them up, then runs jobs sent over a pipe.

Runs in a "spawn" child: no state is inherited, everything it needs is in ``WorkerSpec``. Messages to the
parent: ("ready", info), ("startup_failed", message), ("beat",), ("result", job_id, report_json).
A heartbeat thread beats while a job runs; the parent's per-job timeout catches a job that never ends.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline.edits import Edits
from pipeline.qc import QCReport

if TYPE_CHECKING:
    from pipeline.detect.engine import Engine


@dataclass(frozen=True)
class JobSpec:
    """One job as the dispatcher sees it: paths on a filesystem the worker shares with the publisher."""

    job_id: str
    profile: str
    src: str  # the claimed input
    dst: str  # where the masked result is staged
    name: str  # ingest-relative name recorded in the sidecar
    edits: Edits | None = None  # the folder's camera zones (daemon/intake/zones.py), applied with the masks


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    device: str
    threads: int
    model_dir: str | None
    precision: str = "fp32"
    profiles: dict[str, str] = field(default_factory=dict)  # profile name -> Params as JSON
    runner: str = "daemon.service.worker:PipelineRunner"  # "module:Class"; unit tests inject fakes here
    heartbeat_s: float = 2.0
    log_level: str = "info"


class Runner(Protocol):
    def __init__(self, spec: WorkerSpec) -> None: ...

    def run(self, job: JobSpec) -> QCReport: ...


class PipelineRunner:
    """The real thing: one Engine per distinct detector configuration, built once and warmed up."""

    def __init__(self, spec: WorkerSpec) -> None:
        from pipeline.detect.engine import Engine
        from pipeline.params import Params, RuntimeParams

        runtime = RuntimeParams(device=spec.device, threads=spec.threads, precision=spec.precision,
                                model_dir=Path(spec.model_dir) if spec.model_dir else None)
        self.params = {name: Params.model_validate_json(text) for name, text in spec.profiles.items()}
        self.engines: dict[str, Engine] = {}
        by_detector: dict[str, Engine] = {}
        for name, params in self.params.items():
            key = params.detector.model_dump_json()
            if key not in by_detector:
                engine = Engine.load(params.detector, runtime)
                engine.warm_up()  # first-run allocations now, not on the first file
                by_detector[key] = engine
            self.engines[name] = by_detector[key]

    def run(self, job: JobSpec) -> QCReport:
        from pipeline.run import process_file

        from daemon.publish.contact_sheet import write_contact_sheet

        params = self.params[job.profile]
        report = process_file(Path(job.src), Path(job.dst), params, self.engines[job.profile], name=job.name,
                              edits=job.edits)
        if report.disposition == "review" and Path(job.dst).exists():
            sheet = Path(job.dst).with_name(Path(job.dst).name + ".contact.jpg")
            try:
                write_contact_sheet(Path(job.dst), report, sheet)
            except Exception as exc:  # noqa: BLE001 - the sheet is a reviewer's aid: its loss is noted, not fatal
                sheet.unlink(missing_ok=True)
                reasons = [*report.review_reasons, f"no contact sheet: {type(exc).__name__}"]
                return report.model_copy(update={"review_reasons": reasons})
            report = report.model_copy(update={"companions": [*report.companions, sheet.name]})
        return report


def _die_with_parent() -> None:
    """A worker must not outlive a daemon killed with -9: it would keep a job nobody collects."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _load_runner(spec: WorkerSpec) -> Runner:
    module, _, name = spec.runner.partition(":")
    return getattr(importlib.import_module(module), name)(spec)


def _ensure_hash(report: QCReport, src: Path) -> QCReport:
    if report.input.sha256:
        return report
    from daemon.publish.outputs import sha256_or_none

    return report.model_copy(update={"input": report.input.model_copy(update={"sha256": sha256_or_none(src)})})


def worker_main(conn, spec: WorkerSpec) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # so does a group-wide SIGTERM: the parent stops us in order
    from daemon import log

    log.configure(spec.log_level)
    send_lock = threading.Lock()

    def send(*message) -> None:
        with send_lock:
            conn.send(message)

    try:
        runner = _load_runner(spec)
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported, then the parent decides
        send("startup_failed", f"{type(exc).__name__}: {exc}")
        return
    send("ready", {"pid": os.getpid(), "device": spec.device})

    busy = threading.Event()
    stop_beats = threading.Event()

    def beat() -> None:
        while not stop_beats.wait(spec.heartbeat_s):
            try:
                send("beat", time.time())
            except (OSError, ValueError):
                return

    threading.Thread(target=beat, name="heartbeat", daemon=True).start()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message[0] == "stop":
            break
        job: JobSpec = message[1]
        busy.set()
        src, dst = Path(job.src), Path(job.dst)
        try:
            report = _ensure_hash(runner.run(job), src)
        except Exception as exc:  # noqa: BLE001 - a bug must fail this file closed, not kill the service
            from daemon.publish.outputs import sha256_or_none
            from daemon.publish.reports import failed_report

            if dst.exists():
                dst.unlink()
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            report = failed_report(job.name, src, sha256_or_none(src), "processing",
                                   f"internal error: {detail}")
        busy.clear()
        send("result", job.job_id, report.to_json())
    stop_beats.set()
