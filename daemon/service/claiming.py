"""Claiming: complete files taken from the watchers, folder by folder in turn, into their claim areas; what a
claimed job is dispatched as; and the check, when a job comes back, that its input did not change while it ran."""

from __future__ import annotations

import os

from daemon import log
from daemon.config.settings import FolderSettings
from daemon.intake.jobs import ClaimArea, Job
from daemon.intake.stability import StableFile
from daemon.intake.watcher import FolderWatcher
from daemon.intake.zones import zone_edits
from daemon.service.worker_spec import JobSpec

_log = log.get("veil.service")


class Claimer:
    def __init__(self) -> None:
        self._next_folder = 0  # round robin: one busy folder cannot starve the others

    def claim(self, watchers: list[FolderWatcher], areas: dict[str, ClaimArea], want: int,
              done_marker: str | None) -> list[Job]:
        """Up to ``want`` jobs; what is not wanted now stays in the ingest folders."""
        jobs: list[Job] = []
        idle_rounds = 0
        while len(jobs) < want and watchers and idle_rounds < len(watchers):
            watcher = watchers[self._next_folder % len(watchers)]
            self._next_folder += 1
            stable = watcher.take()
            if stable is None:
                idle_rounds += 1
                continue
            idle_rounds = 0
            job = self._claim_one(watcher, areas[watcher.folder.name], stable, done_marker)
            if job is not None:
                jobs.append(job)
        return jobs

    def _claim_one(self, watcher: FolderWatcher, area: ClaimArea, stable: StableFile,
                   done_marker: str | None) -> Job | None:
        try:
            job = area.claim(stable)
        except OSError as exc:
            _log.error("claim_failed", folder=watcher.folder.name, error=exc.strerror or str(exc))
            return None
        if job is None:
            if stable.path.exists():
                watcher.put_back(stable.path)
            return None
        area.remove_marker(stable, done_marker)
        _log.info("job_claimed", job=job.id, folder=job.record.folder, size=job.record.size,
                  **log.name_field(job.record.rel))
        return job


def job_spec(job: Job, folder: FolderSettings) -> JobSpec:
    """What a worker is told of a claimed job of ``folder``: its files, its folder's profile and camera zones."""
    return JobSpec(job_id=job.id, profile=folder.profile, src=str(job.input_path), dst=str(job.staged_output),
                   name=job.record.rel, edits=zone_edits(folder))


def changed_since_claim(job: Job) -> str | None:
    """A writer still holding the claimed file open may have changed it under the worker: then the result
    may mix two versions. Record the new state and say why, so the job runs again on what is there now."""
    try:
        st = os.lstat(job.input_path)
    except OSError:
        return None  # gone: publishing reports it (a failed job whose input vanished still gets its sidecar)
    if (st.st_size, st.st_mtime_ns) == (job.record.size, job.record.mtime_ns):
        return None
    job.record.size, job.record.mtime_ns = st.st_size, st.st_mtime_ns
    return "the input changed while it was processed"
