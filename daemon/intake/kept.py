"""Originals kept in place (``on_success = "keep"``): a ledger so they are not processed again.

Each kept file has a record ``<ingest>/.veil/kept/<hash of its path>.json`` with its size and mtime, written
before the file goes back to its place, so no instance (sharing the folder) ever sees it unrecorded. A file
changed since (another size or mtime) is new content and is processed again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from daemon.fsutil import write_atomic
from daemon.intake.stability import STATE_DIR_NAME


class KeptLedger:
    def __init__(self, ingest: Path) -> None:
        self.root = ingest / STATE_DIR_NAME / "kept"

    def _path(self, rel: str) -> Path:
        digest = hashlib.sha256(rel.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.json"

    def record(self, rel: str, size: int, mtime_ns: int) -> None:
        write_atomic(self._path(rel), json.dumps({"rel": rel, "size": size, "mtime_ns": mtime_ns}).encode())

    def is_kept(self, rel: str, size: int, mtime_ns: int) -> bool:
        try:
            entry = json.loads(self._path(rel).read_bytes())
        except (OSError, ValueError):
            return False
        return entry.get("rel") == rel and entry.get("size") == size and entry.get("mtime_ns") == mtime_ns
