"""The worker process: loads its engine(s) once, warms them up, then runs jobs sent over a pipe, each on a
thread of its own (up to ``WorkerSpec.jobs`` at once, sharing the engines).

Runs in a "spawn" child: no state is inherited, everything it needs is in ``WorkerSpec``. It speaks in the
records of ``daemon.service.messages``. Heartbeats come from the work itself (``heartbeat.progress``), so a
job that stops moving falls silent; the pool then asks for the stack (``STACK_SIGNAL``, answered by
faulthandler on stderr) before it kills the worker.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline.qc import QCReport

from daemon.service import heartbeat
from daemon.service.messages import Done, FromWorker, Ready, RunJob, StartupFailed, Stop
from daemon.service.worker_spec import JobSpec, WorkerSpec

if TYPE_CHECKING:
    from pipeline.detect.engine import Engine

__all__ = ["STACK_SIGNAL", "JobSpec", "PipelineRunner", "Runner", "WorkerSpec", "load_runner", "run_job", "worker_main"]

STACK_SIGNAL = signal.SIGUSR1  # "print your Python stack": sent to a hung worker before SIGKILL


class Runner(Protocol):
    """Runs jobs in a worker. Long work calls ``heartbeat.progress()`` as it moves."""

    def __init__(self, spec: WorkerSpec) -> None: ...

    def run(self, job: JobSpec) -> QCReport: ...


class PipelineRunner:
    """The real thing: one Engine per distinct detector configuration, built once and warmed up."""

    def __init__(self, spec: WorkerSpec) -> None:
        from pipeline.detect.engine import Engine
        from pipeline.detect.runtime import RuntimeParams
        from pipeline.params import Params

        runtime = RuntimeParams(device=spec.device, threads=spec.threads, precision=spec.precision,
                                spin_wait=spec.spin_wait, max_batch=spec.max_batch,
                                classes_side_by_side=spec.classes_side_by_side,
                                model_dir=Path(spec.model_dir) if spec.model_dir else None)
        self.params = {name: Params.model_validate_json(text) for name, text in spec.profiles.items()}
        self.engines: dict[str, Engine] = {}
        by_detector: dict[str, Engine] = {}
        # Several jobs at once share the engine; on a GPU their calls on one input shape run as one batch.
        shared = spec.jobs * spec.max_batch if spec.jobs > 1 and spec.device != "cpu" else 0
        for name, params in self.params.items():
            key = params.detector.model_dump_json()
            if key not in by_detector:
                heartbeat.progress()  # loading and warming up are work too: beat between the steps
                engine = Engine.load(params.detector, runtime, shared_batches=shared)
                heartbeat.progress()
                engine.warm_up()  # first-run allocations now, not on the first file
                by_detector[key] = engine
            self.engines[name] = by_detector[key]

    def run(self, job: JobSpec) -> QCReport:
        from pipeline.run import process_file

        from daemon.publish.contact_sheet import write_contact_sheet

        params = self.params[job.profile]
        report = process_file(Path(job.src), Path(job.dst), params, self.engines[job.profile], name=job.name,
                              edits=job.edits, progress=heartbeat.for_this_job())
        if report.disposition == "review" and Path(job.dst).exists():
            heartbeat.progress()
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


def load_runner(spec: WorkerSpec) -> Runner:
    module, _, name = spec.runner.partition(":")
    return getattr(importlib.import_module(module), name)(spec)


def _ensure_hash(report: QCReport, src: Path) -> QCReport:
    if report.input.sha256:
        return report
    from daemon.publish.outputs import sha256_or_none

    return report.model_copy(update={"input": report.input.model_copy(update={"sha256": sha256_or_none(src)})})


def run_job(runner: Runner, job: JobSpec) -> QCReport:
    """The job's report; a bug fails this file closed (its partial output removed), never the worker."""
    src, dst = Path(job.src), Path(job.dst)
    try:
        return _ensure_hash(runner.run(job), src)
    except Exception as exc:  # noqa: BLE001 - a bug must fail this file closed, not kill the service
        from pipeline.report import failed_report

        from daemon.publish.outputs import sha256_or_none

        if dst.exists():
            dst.unlink()
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return failed_report(job.name, src, sha256_or_none(src), "processing", f"internal error: {detail}")


def rss_mb() -> float:
    """This process's resident memory now (not its peak): what a recycling limit is measured against."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker_main(conn, spec: WorkerSpec) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # so does a group-wide SIGTERM: the parent stops us in order
    faulthandler.register(STACK_SIGNAL, file=sys.stderr, all_threads=True)
    from daemon import log

    log.configure(spec.log_level)
    send_lock = threading.Lock()  # jobs run on threads of their own, and report as they move

    def send(message: FromWorker) -> None:
        with send_lock:
            conn.send(message)

    beater = heartbeat.Beater(send, spec.heartbeat_s)
    heartbeat.install(beater)
    try:
        runner = load_runner(spec)
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported, then the parent decides
        send(StartupFailed(f"{type(exc).__name__}: {exc}"))
        return
    send(Ready(pid=os.getpid(), device=spec.device))

    def run_and_report(job: JobSpec) -> None:
        heartbeat.running(job.job_id)
        report = run_job(runner, job)
        send(Done(job.job_id, report.to_json(), rss_mb()))
        beater.forget(job.job_id)

    # Each job on a thread of its own, up to spec.jobs at once (the pool sends no more); this thread listens.
    # Daemon threads: a parent gone (the pipe closed) ends the process with its jobs, which nobody would collect.
    jobs: list[threading.Thread] = []
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if isinstance(message, Stop):
            for thread in jobs:
                thread.join()  # sent only while no job runs: a safeguard, never a wait
            break
        if isinstance(message, RunJob):
            jobs = [thread for thread in jobs if thread.is_alive()]
            thread = threading.Thread(target=run_and_report, args=(message.job,), name="veil-job", daemon=True)
            thread.start()
            jobs.append(thread)
