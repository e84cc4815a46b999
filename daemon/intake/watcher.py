"""Noticing arrivals: inotify events (watchdog) as hints, plus full rescans that never trust them alone.

A rescan runs at start (files that arrived while Veil was down), every ``rescan_interval_s`` with inotify,
and every ``poll_interval_s`` in poll mode (SMB/NFS deliver no events for other machines' writes).
Every hint only makes a path a candidate; ``StabilityTracker`` decides when it is complete.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from daemon import log
from daemon.config.settings import FolderSettings, WatchSettings
from daemon.intake.kept import KeptLedger
from daemon.intake.stability import STATE_DIR_NAME, StabilityTracker, StableFile, is_ignored

_log = log.get("veil.watch")


class FolderWatcher:
    """Candidates and complete files of one ingest folder, in arrival order."""

    def __init__(self, folder: FolderSettings, watch: WatchSettings, *, clock: Callable[[], float] = time.monotonic):
        self.folder = folder
        self.root = folder.ingest
        self.watch = watch
        self._patterns = watch.ignore_patterns()
        self._clock = clock
        self._tracker = StabilityTracker(watch.settle_s, done_marker=watch.done_marker, clock=clock)
        self._ready: deque[StableFile] = deque()
        self._ready_paths: set[Path] = set()
        self._hints: set[Path] = set()
        self._hints_lock = threading.Lock()
        self._kept = KeptLedger(folder.ingest)
        self._kept_seen: dict[Path, tuple[int, int]] = {}  # kept originals: skipped while unchanged
        self._next_scan = 0.0  # the first tick scans
        self._last_poll = float("-inf")
        self._poll_every = min(0.5, max(0.05, watch.settle_s / 4))

    # Called from the watchdog thread: only record the hint, the main loop does the rest.
    def hint(self, path: Path) -> None:
        with self._hints_lock:
            self._hints.add(path)

    def force_rescan(self) -> None:
        self._next_scan = 0.0

    def _wanted(self, path: Path) -> bool:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        return bool(rel.parts) and not is_ignored(rel, self._patterns)

    def _consider(self, path: Path) -> None:
        if path in self._ready_paths or path in self._tracker:
            return
        if path in self._kept_seen:
            try:
                st = os.stat(path)
            except OSError:
                del self._kept_seen[path]
                return
            if (st.st_size, st.st_mtime_ns) == self._kept_seen[path]:
                return  # a kept original, unchanged
            del self._kept_seen[path]
        if self._wanted(path):
            self._tracker.observe(path)

    def scan(self) -> int:
        """Walk the whole folder; returns how many files were seen."""
        seen = 0
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=None):
            base = Path(dirpath)
            dirnames[:] = [d for d in dirnames if d != STATE_DIR_NAME and self._wanted(base / d)]
            _report_linked_dirs(self, base, dirnames)
            for name in filenames:
                seen += 1
                self._consider(base / name)
        return seen

    def tick(self) -> None:
        now = self._clock()
        interval = self.watch.poll_interval_s if self.watch.mode == "poll" else self.watch.rescan_interval_s
        if now >= self._next_scan:
            self.scan()
            self._next_scan = now + interval
        with self._hints_lock:
            hints, self._hints = self._hints, set()
        for path in hints:
            if path.is_dir() and not path.is_symlink():  # a link to a folder is never walked into
                _scan_subtree(self, path)  # a folder moved in brings files without events of their own
            else:
                self._consider(path)
        if now - self._last_poll < self._poll_every:
            return  # stat-ing thousands of arriving files four times a second is waste
        self._last_poll = now
        rejected = len(self._tracker.rejected)
        ready = self._tracker.poll()
        if len(self._tracker.rejected) > rejected:
            _log.warning("not_regular_files_ignored", folder=self.folder.name,
                         count=len(self._tracker.rejected) - rejected)
        for stable in ready:
            rel = stable.path.relative_to(self.root).as_posix()
            if self._kept.is_kept(rel, stable.size, stable.mtime_ns):
                self._kept_seen[stable.path] = (stable.size, stable.mtime_ns)
                continue
            self._ready.append(stable)
            self._ready_paths.add(stable.path)

    def take(self) -> StableFile | None:
        if not self._ready:
            return None
        stable = self._ready.popleft()
        self._ready_paths.discard(stable.path)
        return stable

    def put_back(self, path: Path) -> None:
        """A claim found the file changed: watch it again from the start."""
        self._ready_paths.discard(path)
        self._tracker.observe(path)

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    @property
    def waiting_count(self) -> int:
        return len(self._tracker)


def _report_linked_dirs(watcher: FolderWatcher, base: Path, dirnames: list[str]) -> None:
    """Links to folders are candidates like any link: rejected and reported, never walked (os.walk does not)."""
    for name in dirnames:
        if os.path.islink(base / name):
            watcher._consider(base / name)


def _scan_subtree(watcher: FolderWatcher, top: Path) -> None:
    if not watcher._wanted(top):
        return
    if os.path.islink(top):  # replaced by a link since the caller looked: report it, never walk it
        watcher._consider(top)
        return
    for dirpath, dirnames, filenames in os.walk(top):
        base = Path(dirpath)
        dirnames[:] = [d for d in dirnames if watcher._wanted(base / d)]
        _report_linked_dirs(watcher, base, dirnames)
        for name in filenames:
            watcher._consider(base / name)


class InotifyHub:
    """One watchdog observer for all folders; events become hints for the folder they fall in."""

    def __init__(self, watchers: list[FolderWatcher]) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        class _Handler(FileSystemEventHandler):
            def __init__(self, watcher: FolderWatcher) -> None:
                self.watcher = watcher

            def on_any_event(self, event) -> None:  # created, modified, closed, moved
                for attr in ("dest_path", "src_path"):
                    raw = getattr(event, attr, "")
                    if raw:
                        self.watcher.hint(Path(os.fsdecode(raw)))
                        break

        self._observer = Observer()
        for watcher in watchers:
            self._observer.schedule(_Handler(watcher), str(watcher.root), recursive=True)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
