"""When is an arriving file complete? When its size and mtime have not changed for the settle time.

Also which names are never inputs (partial downloads, OS droppings, Veil's own work area), and the optional
done-marker convention: with ``done_marker = ".done"``, ``x.jpg`` is complete once ``x.jpg.done`` exists.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

STATE_DIR_NAME = ".veil"  # Veil's work area inside each ingest folder; never an input


def is_ignored(rel: Path, patterns: Iterable[str]) -> bool:
    """True when any component of ``rel`` (a path relative to the ingest folder) matches a pattern."""
    patterns = tuple(patterns)
    for part in rel.parts:
        if part == STATE_DIR_NAME:
            return True
        if any(fnmatch.fnmatchcase(part, pattern) for pattern in patterns):
            return True
    return False


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


@dataclass(frozen=True)
class StableFile:
    path: Path
    size: int
    mtime_ns: int


class StabilityTracker:
    """Holds candidate paths; ``poll`` stats them and returns those unchanged for ``settle_s``."""

    def __init__(self, settle_s: float, *, done_marker: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.settle_s = settle_s
        self.done_marker = done_marker
        self._clock = clock
        self._seen: dict[Path, _Seen | None] = {}
        self.rejected: set[Path] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, path: Path) -> bool:
        return path in self._seen

    def observe(self, path: Path) -> None:
        if self.done_marker and path.name.endswith(self.done_marker):
            # The marker itself is not an input: it makes its subject a candidate.
            path = path.with_name(path.name[: -len(self.done_marker)])
        if path in self.rejected:
            try:
                if not _is_regular(os.stat(path, follow_symlinks=False).st_mode):
                    return  # still not a regular file: already reported
            except OSError:
                pass
            self.rejected.discard(path)
        self._seen.setdefault(path, None)

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)

    def poll(self) -> list[StableFile]:
        now = self._clock()
        ready: list[StableFile] = []
        for path, last_seen in list(self._seen.items()):
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                del self._seen[path]  # gone (taken by another instance, or deleted by its writer)
                continue
            if not _is_regular(st.st_mode):
                del self._seen[path]
                self.rejected.add(path)  # symlinks, FIFOs, devices: never followed nor read
                continue
            if self.done_marker:
                if os.path.lexists(str(path) + self.done_marker):
                    del self._seen[path]
                    ready.append(StableFile(path, st.st_size, st.st_mtime_ns))
                continue  # without its marker a file waits, however long it has been stable
            seen = last_seen
            if seen is None or (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                seen = self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now)
                if self.settle_s > 0:
                    continue  # first sight or still changing: look again later
            if now - seen.since >= self.settle_s:
                del self._seen[path]
                ready.append(StableFile(path, st.st_size, st.st_mtime_ns))
        return ready


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)
