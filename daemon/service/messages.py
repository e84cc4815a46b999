"""What the pool and its workers say to each other over their pipe: small frozen records, dispatched on type.

Parent to worker: ``RunJob``, ``Stop``. Worker to parent: ``Ready`` once its models are loaded and warm,
``StartupFailed`` when they are not, ``Heartbeat`` while work moves, ``Done`` with each job's report.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.service.worker_spec import JobSpec


@dataclass(frozen=True)
class RunJob:
    job: JobSpec


@dataclass(frozen=True)
class Stop:
    """Finish nothing more: exit the loop (sent only while the worker runs no job)."""


@dataclass(frozen=True)
class Ready:
    pid: int
    device: str


@dataclass(frozen=True)
class StartupFailed:
    error: str  # "ExceptionType: message"


@dataclass(frozen=True)
class Heartbeat:
    at: float  # the worker's wall clock, for the log when it matters
    job_id: str | None = None  # the job that moved; None: the worker itself (loading its models)


@dataclass(frozen=True)
class Done:
    job_id: str
    report_json: str  # the sidecar, whatever the disposition (a failed report included)
    rss_mb: float  # the worker's resident memory after the job: the pool recycles a worker past its limit


ToWorker = RunJob | Stop
FromWorker = Ready | StartupFailed | Heartbeat | Done
