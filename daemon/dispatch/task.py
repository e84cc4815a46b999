"""One delivery of a job, in a ``veil worker``'s child: lock the job, process it, publish it, answer.

Runs where the models were loaded (the prefork child). Idempotent, because a broker may deliver a job more
than once (a worker lost after publishing, before its acknowledgement; a claim enqueued again after a
restart of ``veil serve``):

- the job's lock (``daemon.intake.jobs.job_lock``): a second delivery waits while one runs, and ``veil serve``
  takes it to remove a finished job, so that no delivery writes into a folder being removed;
- the job's journal says where it stands: ``claimed`` runs it (staging cleared first: the leftovers of a
  killed try never reach a result), ``processed`` publishes the stored report, ``published`` answers again;
- no job directory: the job is finished and gone, the answer says so;
- publishing is today's: deterministic names, temporary file + fsync + rename, the sidecar last; a sidecar
  already there with this input's hash makes it publish nothing.
Every delivery that reaches a worker is counted in ``<job dir>/deliveries``: the dead-letter sidecar says
how many there were.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.qc import QCReport
from pipeline.report import failed_report

from daemon.config.settings import Settings
from daemon.dispatch.payload import JobResult, TaskPayload
from daemon.fsutil import write_atomic
from daemon.intake.jobs import LOCK_NAME, Job, JobRecord, job_lock
from daemon.publish.outputs import missing_results, publish
from daemon.service.claiming import changed_since_claim, job_spec
from daemon.service.worker import Runner, run_job

DELIVERIES_NAME = "deliveries"


def _remove_leftover(job_dir: Path) -> None:
    """A lock file this delivery created in a job folder being removed: take it away, and the folder if empty."""
    (job_dir / LOCK_NAME).unlink(missing_ok=True)
    try:
        os.rmdir(job_dir)
    except OSError:
        pass  # not empty, or already gone: the finalizing side removes it


def count_delivery(job_dir: Path) -> int:
    path = job_dir / DELIVERIES_NAME
    try:
        count = int(path.read_text()) + 1
    except (OSError, ValueError):
        count = 1
    write_atomic(path, str(count).encode())
    return count


def read_deliveries(job_dir: Path) -> int:
    try:
        return int((job_dir / DELIVERIES_NAME).read_text())
    except (OSError, ValueError):
        return 0


def deliver(payload: TaskPayload, settings: Settings, runner: Runner, *, node: str = "",
            soft_limit_s: float | None = None) -> JobResult:
    """Handle one delivery; never raises for a job's own fault (a failed file is a published failed report)."""
    job_dir = Path(payload.job_dir)
    with job_lock(job_dir) as locked:
        if not locked:
            return JobResult(job_id=payload.job_id, status="gone", worker=node)
        try:
            record = JobRecord.model_validate_json((job_dir / "job.json").read_bytes())
        except FileNotFoundError:  # finalized: `veil serve` removed it while this delivery waited for the lock
            _remove_leftover(job_dir)
            return JobResult(job_id=payload.job_id, status="gone", worker=node)
        job = Job(record, job_dir)
        deliveries = count_delivery(job_dir)
        result = _advance(job, settings, runner, soft_limit_s)
        return result.model_copy(update={"deliveries": deliveries, "worker": node})


def _advance(job: Job, settings: Settings, runner: Runner, soft_limit_s: float | None) -> JobResult:
    if job.record.state == "published":
        return JobResult(job_id=job.id, status="published", report_json=job.report_path.read_text())
    if job.record.state == "processed":
        return _publish(job, settings, QCReport.from_json(job.report_path.read_bytes()))
    if not job.input_path.exists():
        return JobResult(job_id=job.id, status="gone")  # released by `veil serve` at a stop: not ours now
    shutil.rmtree(job.staging, ignore_errors=True)  # a killed try's leftovers never reach a result
    job.staging.mkdir(parents=True)
    report = _named_time_limit(run_job(runner, job_spec(job, settings.folder(job.record.folder))), soft_limit_s)
    failure = changed_since_claim(job)
    if failure:
        job.save()  # the new size and time of the input, for the next try
        return JobResult(job_id=job.id, status="retry", failure=failure)
    if missing_results(job, report):
        missing = ", ".join(missing_results(job, report))
        report = failed_report(job.record.rel, job.input_path, report.input.sha256, "processing",
                               f"the pipeline reported {report.disposition!r} but did not write: {missing}")
    write_atomic(job.report_path, report.to_json().encode())
    job.record.state = "processed"
    job.save()
    return _publish(job, settings, report)


def _publish(job: Job, settings: Settings, report: QCReport) -> JobResult:
    try:
        publish(job, settings.folder(job.record.folder), report)
    except OSError as exc:  # a share gone away, a full disk: `veil serve` publishes it, with its retries
        return JobResult(job_id=job.id, status="processed", report_json=report.to_json(),
                         failure=f"publishing on the worker failed: {exc.strerror or exc}")
    return JobResult(job_id=job.id, status="published", report_json=report.to_json())


def _named_time_limit(report: QCReport, soft_limit_s: float | None) -> QCReport:
    """The soft limit raised inside the pipeline, which failed the file closed: say so in plain words."""
    if report.error is None or "SoftTimeLimitExceeded" not in report.error.message:
        return report
    limit = f" of {soft_limit_s:g} s" if soft_limit_s else ""
    error = report.error.model_copy(update={"kind": "processing", "message": f"time limit{limit} exceeded"})
    return report.model_copy(update={"error": error})
