"""What a previous run left in the claim areas, resumed at start: a claimed job runs again (an attempt it
was in counts, with the reason), a processed one is published from its stored report, a published one
only has its original archived or deleted."""

from __future__ import annotations

from pipeline.qc import QCReport

from daemon import log
from daemon.config.settings import Settings
from daemon.intake.jobs import ClaimArea, Job
from daemon.publish.outputs import finalize
from daemon.service.publisher import Publisher

_log = log.get("veil.service")


def recover(settings: Settings, areas: dict[str, ClaimArea], publisher: Publisher) -> list[Job]:
    """Finish what can be finished now; return the jobs to run again, in the order found."""
    to_run: list[Job] = []
    for name, area in areas.items():
        for job in area.recover():
            job.record.folder = name  # the folder holding it decides, even if it was renamed since
            _log.info("job_recovered", job=job.id, folder=name, state=job.record.state, attempts=job.record.attempts)
            if job.record.state == "claimed":
                if job.record.attempts:
                    job.record.failures.append("interrupted (the service stopped during the job)")
                    job.save()
                to_run.append(job)
            elif job.record.state == "processed":
                if not _publish_stored(job, publisher):
                    to_run.append(job)
            else:  # published: only the original is left to archive or delete
                finalize(job, area, settings.folder(job.record.folder), _disposition_of(job))
    return to_run


def _publish_stored(job: Job, publisher: Publisher) -> bool:
    """Publish a processed job from its report; False (the job back to claimed) when the report is unreadable."""
    try:
        publisher.publish(job, QCReport.from_json(job.report_path.read_bytes()))
    except (OSError, ValueError) as exc:
        _log.error("recovered_report_unreadable", job=job.id, error=type(exc).__name__)
        job.record.state = "claimed"
        job.save()
        return False
    return True


def _disposition_of(job: Job) -> str:
    try:
        return QCReport.from_json(job.report_path.read_bytes()).disposition
    except (OSError, ValueError):
        return "done"  # unknown: treat the original as a success's (archived by default), never lose it
