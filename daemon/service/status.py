"""What the service is doing, for ``veil status`` and the systemd STATUS= line.

The service rewrites ``<state_dir>/status-<instance>.json`` atomically about once a second. File names
appear in it only when ``log_file_names`` allows, like in the logs.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from daemon.fsutil import write_atomic

_MAX_ERRORS = 20


@dataclass
class Counters:
    done: int = 0
    review: int = 0
    failed: int = 0
    duplicate: int = 0
    retried: int = 0
    finished_at: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    errors: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_MAX_ERRORS))

    def finished(self, disposition: str, duplicate: bool) -> None:
        if duplicate:
            self.duplicate += 1
        else:
            setattr(self, disposition, getattr(self, disposition) + 1)
        self.finished_at.append(time.time())

    def counts(self) -> dict[str, int]:
        return {"done": self.done, "review": self.review, "failed": self.failed, "duplicate": self.duplicate,
                "retried": self.retried}

    def error(self, **fields: Any) -> None:
        self.errors.append({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields})

    def throughput(self) -> dict[str, float]:
        now = time.time()
        last_1 = sum(1 for t in self.finished_at if now - t <= 60)
        last_10 = sum(1 for t in self.finished_at if now - t <= 600)
        return {"files_last_minute": last_1, "files_last_10_minutes": last_10,
                "files_per_minute_10m": round(last_10 / 10, 2)}


def status_line(queue: int, in_flight: int, counters: Counters) -> str:
    return (f"queue {queue}, in flight {in_flight}, done {counters.done}, review {counters.review}, "
            f"failed {counters.failed}")


def status_path(state_dir: Path, instance: str) -> Path:
    return state_dir / f"status-{instance}.json"


def write_status(path: Path, snapshot: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(snapshot, indent=1, default=str).encode())


def read_statuses(state_dir: Path) -> list[dict[str, Any]]:
    statuses = []
    for path in sorted(state_dir.glob("status-*.json")):
        try:
            snapshot = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        snapshot["running"] = _alive(int(snapshot.get("pid", 0)))
        statuses.append(snapshot)
    return statuses


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
