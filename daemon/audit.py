"""An append-only audit log: JSON lines, each carrying the SHA-256 of the line before it (a hash chain).

Editing, removing or reordering a past line breaks the chain, which ``verify`` reports. Appends take an
exclusive lock, so several processes (the service, ``veil drift ack``) can write one log.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
AUDIT_NAME = "audit.jsonl"


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: str, *, actor: str, at: datetime | None = None, **detail: Any) -> dict[str, Any]:
        """Write one event durably and return it, with ``prev`` (the previous line's hash)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            last = None
            for line in handle:
                if line.strip():
                    last = line.rstrip("\n")
            record = {
                "at": (at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
                "event": event, "actor": actor, **detail,
                "prev": _digest(last) if last is not None else GENESIS,
            }
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return record

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def verify(self) -> list[int]:
        """Line numbers (1-based) whose ``prev`` does not match the line before: empty when intact."""
        if not self.path.exists():
            return []
        broken, previous = [], GENESIS
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                if json.loads(line).get("prev") != previous:
                    broken.append(number)
            except ValueError:
                broken.append(number)
            previous = _digest(line)
        return broken
