"""The service's side of rework: documents dropped into each folder's ``rework/`` are re-rendered.

A document ``<ID>.rework.json`` (daemon/review/rework/) is taken once it has not changed for ``watch.settle_s``,
moved to ``rework/.work/`` (the claim), and handled by one background thread, so the main loop and its
watchdog pings never wait on a re-render. Afterwards it goes to ``rework/done/``, or to ``rework/failed/``
beside ``<name>.error.json`` saying why. A document left in ``.work/`` by a stop is put back at start.
A bad document never stops the service: every failure ends in failed/.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from daemon import log
from daemon.audit.log import AUDIT_NAME, AuditLog
from daemon.config.settings import FolderSettings, Settings
from daemon.fsutil import write_atomic
from daemon.models.engine_cache import EngineCache
from daemon.review.rework import REWORK_SUFFIX, ReworkError, approve, parse_document, service_params
from daemon.review.rework.document import read_document

_log = log.get("veil.rework")
WORK, DONE, FAILED = ".work", "done", "failed"
_SCAN_EVERY_S = 2.0


def _unique(path: Path) -> Path:
    """``path``, or ``path`` with ``.2``, ``.3`` ... before its suffix: done/ and failed/ keep every document."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name[: -len(REWORK_SUFFIX)]}.{n}{REWORK_SUFFIX}")
    return candidate


class ReworkQueue:
    def __init__(self, settings: Settings, audit: AuditLog | None = None, engines=None) -> None:
        self.settings = settings
        self.audit = audit or AuditLog(settings.drift.resolved_store_dir(settings.service) / AUDIT_NAME)
        self.engines = engines or EngineCache(settings.service)
        self._jobs: queue.Queue[tuple[FolderSettings, Path] | None] = queue.Queue()
        self._pending: set[Path] = set()
        self._last_scan = 0.0
        self._thread = threading.Thread(target=self._work, name="rework", daemon=True)
        self._recover()
        self._thread.start()

    def _recover(self) -> None:
        for folder in self.settings.folders:
            work = folder.rework_dir / WORK
            for doc in sorted(work.glob("*" + REWORK_SUFFIX)) if work.is_dir() else []:
                os.replace(doc, _unique(folder.rework_dir / doc.name))

    def tick(self, now: float | None = None) -> None:
        """Look for settled documents (every few seconds) and hand them to the thread."""
        now = time.monotonic() if now is None else now
        if now - self._last_scan < _SCAN_EVERY_S:
            return
        self._last_scan = now
        settle = self.settings.watch.settle_s
        for folder in self.settings.folders:
            try:
                docs = sorted(folder.rework_dir.glob("*" + REWORK_SUFFIX))
            except OSError:
                continue
            for doc in docs:
                try:
                    st = doc.stat()
                except OSError:
                    continue
                if doc in self._pending or not doc.is_file() or time.time() - st.st_mtime < settle:
                    continue
                self._pending.add(doc)
                self._jobs.put((folder, doc))

    def close(self) -> None:
        """Finish the document in hand, leave the others where they are."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._jobs.put(None)
        self._thread.join()

    def idle(self) -> bool:
        return not self._pending

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            folder, doc = job
            try:
                self._handle(folder, doc)
            except Exception as exc:  # noqa: BLE001 - a fault here must not end rework for everyone
                _log.error("rework_internal_error", folder=folder.name, error=type(exc).__name__)
            finally:
                self._pending.discard(doc)

    def _handle(self, folder: FolderSettings, doc: Path) -> None:
        claimed = folder.rework_dir / WORK / doc.name
        claimed.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(doc, claimed)
        except FileNotFoundError:
            return  # taken away meanwhile
        try:
            parsed = parse_document(read_document(claimed))
            done = approve(folder, service_params(self.settings, folder), self.engines, parsed, audit=self.audit,
                           source="rework-folder", audit_names=self.settings.service.log_file_names)
        except Exception as exc:  # noqa: BLE001 - a bad document or a failed re-render: failed/, never a crash
            message = str(exc) if isinstance(exc, ReworkError) else f"{type(exc).__name__}: {exc}"
            self._finish(folder, claimed, FAILED, message)  # the whole message there; the log names no file
            _log.warning("rework_failed", folder=folder.name, error=message if isinstance(exc, ReworkError) else type(exc).__name__)
            return
        self._finish(folder, claimed, DONE)
        _log.info("rework_done", folder=folder.name, item=parsed.id[:12], regions=done.counts.regions,
                  false_positives=done.counts.false_positives)

    @staticmethod
    def _finish(folder: FolderSettings, claimed: Path, where: str, error: str | None = None) -> None:
        final = _unique(folder.rework_dir / where / claimed.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(claimed, final)
        if error is not None:  # the reason last, like every sidecar: whoever sees it finds the document there
            stem = final.name[: -len(REWORK_SUFFIX)]
            record = {"error": error, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "document": final.name}
            write_atomic(final.with_name(stem + ".error.json"), json.dumps(record, indent=2).encode())
