"""An append-only audit log: JSON lines, each carrying the SHA-256 of the line before it (a hash chain).

Editing, removing or reordering a past line breaks the chain, which ``verify`` reports. The last line has no
successor to vouch for it, so each append also writes that line's hash to ``<log>.head``: an edited or
dropped last line shows too. Appends take an exclusive lock, so several processes (the service,
``veil drift ack``, ``veil models activate``) can write one log.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from daemon.fsutil import write_atomic

GENESIS = "0" * 64
AUDIT_NAME = "audit.jsonl"
HEAD_SUFFIX = ".head"


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.head_path = path.with_name(path.name + HEAD_SUFFIX)

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
            line = json.dumps(record, sort_keys=True)
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            write_atomic(self.head_path, (_digest(line) + "\n").encode())  # still under the lock
        return record

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def verify(self) -> list[int]:
        """Line numbers (1-based) whose ``prev`` does not match the line before, plus the last line when it is
        not the one last appended (``.head``): empty when intact. Line N reported: line N-1 or N was changed,
        or lines were removed or inserted between them; for the last line, also that it was dropped."""
        if not self.path.exists():
            return [1] if self.head_path.exists() else []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        broken, previous = [], GENESIS
        for number, line in enumerate(lines, start=1):
            try:
                if json.loads(line).get("prev") != previous:
                    broken.append(number)
            except ValueError:
                broken.append(number)
            previous = _digest(line)
        if self.head_path.exists() and self.head_path.read_text().strip() != previous:
            last = max(len(lines), 1)  # nothing else vouches for the last line
            if last not in broken:
                broken.append(last)
        return broken
