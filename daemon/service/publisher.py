"""Publishing finished jobs: the report made durable, the results moved to their folder, the original
archived, the outcome counted and logged. A publish the filesystem refuses (disk full, permissions, a share
gone away) keeps its job and is tried again ``retry_s`` later; the next start finds whatever is left."""

from __future__ import annotations

import time
from typing import Any

from pipeline.qc import QCReport
from pipeline.report import failed_report

from daemon import log
from daemon.config.settings import Settings
from daemon.drift.service import DriftService
from daemon.fsutil import write_atomic
from daemon.intake.jobs import ClaimArea, Job
from daemon.publish.outputs import already_published, finalize, missing_results, publish, sha256_or_none
from daemon.service.status import Counters

_log = log.get("veil.service")
RETRY_S = 30.0


class Publisher:
    def __init__(self, settings: Settings, areas: dict[str, ClaimArea], counters: Counters,
                 drift: DriftService | None, retry_s: float = RETRY_S) -> None:
        self.settings = settings
        self.areas = areas
        self.counters = counters
        self.drift = drift
        self.retry_s = retry_s
        self._later: list[tuple[float, Job, QCReport]] = []

    def give_up(self, job: Job) -> None:
        """Out of tries: the file goes to failed/ with every attempt's reason."""
        max_attempts = self.settings.service.max_attempts
        reasons = "; ".join(job.record.failures[-max_attempts:]) or "unknown"
        message = f"gave up after {job.record.attempts} attempts: {reasons}"
        sha = sha256_or_none(job.input_path)  # an unreadable input must still get its error sidecar
        self.publish(job, failed_report(job.record.rel, job.input_path, sha, "error", message))

    def publish(self, job: Job, report: QCReport) -> None:
        folder = self.settings.folder(job.record.folder)
        area = self.areas[folder.name]
        if job.record.state == "claimed" and missing_results(job, report):
            missing = ", ".join(missing_results(job, report))
            sha = report.input.sha256
            report = failed_report(job.record.rel, job.input_path, sha, "processing",
                                   f"the pipeline reported {report.disposition!r} but did not write: {missing}")
        try:
            if job.record.state == "claimed":
                write_atomic(job.report_path, report.to_json().encode())
                job.record.state = "processed"
                job.save()
            if job.record.state == "published":  # by a remote worker: its stored report is what was published
                report = QCReport.from_json(job.report_path.read_bytes())
                result = already_published(job, folder, report)
            else:
                result = publish(job, folder, report)
            finalize(job, area, folder, report.disposition)
        except OSError as exc:  # disk full, permissions, a share gone away: keep the job, try again later
            _log.error("publish_failed", job=job.id, folder=folder.name, error=exc.strerror or str(exc))
            self.counters.error(job=job.id, folder=folder.name, kind="publish", message=exc.strerror or str(exc))
            self._later.append((time.monotonic() + self.retry_s, job, report))
            return
        self.counters.finished(report.disposition, result.duplicate)
        self._log_finished(job, report, result.name, result.duplicate)
        if self.drift is not None:
            self.drift.finished(folder, report, result.name, result.duplicate)

    def _log_finished(self, job: Job, report: QCReport, name: str, duplicate: bool) -> None:
        fields: dict[str, Any] = {"job": job.id, "folder": job.record.folder, "disposition": report.disposition,
                                  "duplicate": duplicate, "seconds": round(report.processing_seconds, 3),
                                  "attempts": job.record.attempts}
        if report.error is not None:
            fields["error_kind"] = report.error.kind
            error = {"job": job.id, "folder": job.record.folder, "kind": report.error.kind}
            if self.settings.service.log_file_names:
                fields["error"] = report.error.message
                error.update(name=job.record.rel, message=report.error.message)
            self.counters.error(**error)
        if report.review_reasons:
            fields["review_reasons"] = len(report.review_reasons)
        _log.info("job_finished", **fields, **log.name_field(name))

    def retry_due(self) -> None:
        if not self._later:
            return
        now = time.monotonic()
        due = [item for item in self._later if item[0] <= now]
        self._later = [item for item in self._later if item[0] > now]
        for _, job, report in due:
            self.publish(job, report)

    def abandon(self) -> None:
        """At stop: what could not be published stays processed on disk; the next start publishes it."""
        for _, job, _report in self._later:
            _log.warning("publish_pending_at_stop", job=job.id, folder=job.record.folder)
        self._later.clear()
