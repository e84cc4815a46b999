"""Claiming files and the per-job journal that makes a restart safe.

A claim is an atomic rename of the input into ``<ingest>/.veil/processing/<instance>/<job id>/input/``,
on the same filesystem. Two instances racing for one file: exactly one rename succeeds. Each job directory
holds ``job.json``, written before the rename and updated at each step:

    claimed    the input is ours; (re)process it
    processed  results are staged in out/ and report.json; publish them, do not process again
    published  outputs and sidecar are durable; only the original remains to archive or delete

After a kill -9 or a power loss, ``recover`` reads these and the service resumes each job at its step.
An instance holds a lock on its processing folder, so a second process with the same instance name refuses
to start instead of "recovering" jobs that are still running.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from daemon import log
from daemon.config.settings import FolderSettings
from daemon.fsutil import folder_within, fsync_dir, fsync_open_dir, write_atomic
from daemon.intake.stability import STATE_DIR_NAME, StableFile

_log = log.get("veil.jobs")

JobState = Literal["claimed", "processed", "published"]
LOCK_NAME = "job.lock"
REMOVING_PREFIX = ".removing-"  # a finished job's folder, renamed away before it is deleted


@contextmanager
def job_lock(job_dir: Path) -> Iterator[bool]:
    """Hold the job's exclusive lock (flock on ``<job dir>/job.lock``), waiting while another process holds
    it; False: the job directory is gone. A remote worker holds it while it runs a delivery
    (daemon/dispatch/task.py); the service while it removes a finished job. A process that dies releases it."""
    try:
        fd = os.open(job_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            yield False
            return
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)  # closing releases the lock


class InstanceBusy(Exception):
    """Another live process holds this instance's processing folder."""


class JobRecord(BaseModel):
    """The on-disk journal of one job."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    folder: str
    rel: str  # ingest-relative path, POSIX separators: the deterministic output name
    size: int
    mtime_ns: int
    claimed_at: datetime
    state: JobState = "claimed"
    attempts: int = 0  # dispatches so far, counted before each one
    failures: list[str] = []  # why earlier attempts ended without a result
    alone: bool = False  # run in a worker of its own: a worker died under it and other jobs, the cause unknown
    targets: dict[str, str] = {}  # staged file name -> final path, fixed before publishing


@dataclass
class Job:
    record: JobRecord
    dir: Path

    @property
    def id(self) -> str:
        return self.record.job_id

    @property
    def input_path(self) -> Path:
        return self.dir / "input" / Path(self.record.rel).name

    @property
    def staging(self) -> Path:
        return self.dir / "out"

    @property
    def staged_output(self) -> Path:
        return self.staging / Path(self.record.rel).name

    @property
    def report_path(self) -> Path:
        return self.dir / "report.json"

    def save(self) -> None:
        write_atomic(self.dir / "job.json", self.record.model_dump_json(indent=1).encode())

    def reload(self) -> None:
        """Read the journal again: another process (a remote worker) may have moved it on."""
        self.record = JobRecord.model_validate_json((self.dir / "job.json").read_bytes())


class ClaimArea:
    """This instance's processing folder inside one ingest folder."""

    def __init__(self, folder: FolderSettings, instance: str) -> None:
        self.folder = folder
        self.instance = instance
        self.root = folder.ingest / STATE_DIR_NAME / "processing" / instance
        self._lock_fd: int | None = None

    def lock(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root.parent / f"{self.instance}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InstanceBusy(
                f"another Veil process with instance name {self.instance!r} is using {self.folder.ingest}; "
                "give each instance its own service.instance"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def claim(self, stable: StableFile) -> Job | None:
        """Take ``stable`` for this instance, or None if it is gone or still changing."""
        rel = stable.path.relative_to(self.folder.ingest)
        with folder_within(self.folder.ingest, rel.parent) as arrived_in:
            job_id = uuid.uuid4().hex[:16]
            job = Job(
                JobRecord(job_id=job_id, folder=self.folder.name, rel=rel.as_posix(), size=stable.size,
                          mtime_ns=stable.mtime_ns, claimed_at=datetime.now(timezone.utc)),
                self.root / job_id,
            )
            job.input_path.parent.mkdir(parents=True)
            job.save()  # the journal exists before the input moves, so a crash in between loses nothing
            try:
                os.rename(rel.name, job.input_path, src_dir_fd=arrived_in)
            except FileNotFoundError:
                shutil.rmtree(job.dir, ignore_errors=True)  # another instance was faster, or the writer removed it
                return None
            st = os.lstat(job.input_path)  # not following a symlink swapped in since the file was checked
            if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != (stable.size, stable.mtime_ns):
                self._give_back(job)  # still being written after all: return it and wait again
                return None
            fsync_dir(job.input_path.parent)
            fsync_open_dir(arrived_in)
        return job

    def _give_back(self, job: Job) -> bool:
        rel = Path(job.record.rel)
        (self.folder.ingest / rel.parent).mkdir(parents=True, exist_ok=True)
        with folder_within(self.folder.ingest, rel.parent) as folder:
            try:
                os.link(job.input_path, rel.name, dst_dir_fd=folder)  # never over a new file of the same name
            except FileExistsError:
                return False
            os.unlink(job.input_path)
            fsync_open_dir(folder)
        shutil.rmtree(job.dir, ignore_errors=True)
        return True

    def release(self, job: Job) -> bool:
        """Put an unstarted job's input back where it came from (a clean stop), for any instance to take."""
        if job.record.state != "claimed" or not job.input_path.exists():
            return False
        return self._give_back(job)

    def finish(self, job: Job) -> None:
        """Remove a finished job. Its folder is renamed away under the lock, then deleted: a duplicate delivery
        on a remote worker that waited for the lock, or comes later, finds no folder. Deleted in place, a
        delivery could create a new lock file in the half-removed folder and keep that folder alive."""
        removing = job.dir.with_name(REMOVING_PREFIX + job.dir.name)
        with job_lock(job.dir) as locked:
            if locked:
                os.rename(job.dir, removing)
        shutil.rmtree(removing, ignore_errors=True)
        fsync_dir(self.root)

    def recover(self) -> list[Job]:
        """The jobs a previous run of this instance left unfinished, oldest first."""
        jobs: list[Job] = []
        if not self.root.is_dir():
            return jobs
        for job_dir in sorted(self.root.iterdir()):
            if not job_dir.is_dir():
                continue
            if job_dir.name.startswith(REMOVING_PREFIX):  # finished; the run stopped while deleting it
                shutil.rmtree(job_dir, ignore_errors=True)
                continue
            try:
                record = JobRecord.model_validate_json((job_dir / "job.json").read_bytes())
            except (OSError, ValueError) as exc:
                input_dir = job_dir / "input"
                if not input_dir.is_dir() or not any(input_dir.iterdir()):
                    # Killed before its journal was first written: the input was never moved, nothing to keep.
                    shutil.rmtree(job_dir, ignore_errors=True)
                    continue
                _log.error("job_journal_unreadable", job=job_dir.name, folder=self.folder.name, error=type(exc).__name__)
                continue  # left in place for an operator: never guess and never delete an input
            job = Job(record, job_dir)
            if record.state == "claimed" and not job.input_path.exists():
                shutil.rmtree(job_dir, ignore_errors=True)  # died between journal and rename: nothing was taken
                continue
            jobs.append(job)
        jobs.sort(key=lambda j: j.record.claimed_at)
        return jobs

    def remove_marker(self, stable: StableFile, marker: str | None) -> None:
        if not marker:
            return
        rel = stable.path.relative_to(self.folder.ingest)
        try:
            with folder_within(self.folder.ingest, rel.parent) as folder:
                os.unlink(rel.name + marker, dir_fd=folder)
        except OSError as exc:  # gone, or its folder now a link that may lead out of the share: left alone
            if exc.errno not in (errno.ENOENT, errno.ELOOP):
                raise
