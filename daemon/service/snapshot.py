"""The status snapshot ``veil status`` reads: state, queue, jobs in flight, workers, counts, recent errors.
File names appear only when ``log_file_names`` allows, like in the logs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from daemon.config.settings import ServiceSettings
from daemon.intake.jobs import Job
from daemon.intake.watcher import FolderWatcher
from daemon.service.pool import Dispatcher, LocalPool
from daemon.service.status import Counters


@dataclass(frozen=True)
class Lifetime:
    state: str  # starting, running, reloading, stopping, stopped, failed
    started_at: datetime
    stopped_at: datetime | None


def status_snapshot(service: ServiceSettings, lifetime: Lifetime, *, watchers: list[FolderWatcher], claimed: int,
                    running: dict[str, Job], pool: Dispatcher | None, counters: Counters) -> dict[str, Any]:
    return {
        "instance": service.instance,
        "pid": os.getpid(),
        "state": lifetime.state,
        "started_at": lifetime.started_at.isoformat(timespec="seconds"),
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stopped_at": lifetime.stopped_at.isoformat(timespec="seconds") if lifetime.stopped_at else None,
        "queue": {
            "waiting_to_settle": sum(w.waiting_count for w in watchers),
            "complete_in_ingest": sum(w.ready_count for w in watchers),
            "claimed": claimed,
        },
        "in_flight": _in_flight(service, running, pool),
        "workers": [{"index": i, "pid": pid} for i, pid in enumerate(pool.worker_pids())] if isinstance(pool, LocalPool) else [],
        "worker_restarts": pool.restarts if isinstance(pool, LocalPool) else 0,
        "counts": counters.counts(),
        "throughput": counters.throughput(),
        "last_errors": list(counters.errors),
    }


def _in_flight(service: ServiceSettings, running: dict[str, Job], pool: Dispatcher | None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for item in pool.in_flight() if pool is not None else []:
        job = running.get(item.job_id)
        entry: dict[str, Any] = {"job": item.job_id, "worker": item.worker, "pid": item.pid,
                                 "running_s": round(time.time() - item.started, 1)}
        if job is not None:
            entry.update(folder=job.record.folder, attempt=job.record.attempts)
            if service.log_file_names:
                entry["name"] = job.record.rel
        entries.append(entry)
    return entries
