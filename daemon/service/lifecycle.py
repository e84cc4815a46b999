"""The service: start, main loop, reload, stop. Signal handlers only set flags; the loop does the work.

Start builds the service's parts in order on an ``ExitStack`` and stop closes it, so each part's teardown is
written once, and a failure at any step undoes exactly what had started, in reverse: the folders and their locks
(folders.py), drift monitoring, the publisher (publisher.py), the workers (models loaded and warmed up), the
jobs a previous run left (recovery.py), the watchers with their start-up rescan, the rework thread. Then
READY=1. The loop claims complete files, keeps the workers fed (one waiting job per job slot: a flood stays in
ingest, not in memory), publishes results and pings the systemd watchdog. SIGTERM stops intake, gives running
jobs ``stop_timeout_s`` to finish, and puts everything unfinished back. SIGHUP re-reads the configuration; an
invalid one is refused and the service keeps its current one.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import deque
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.detect.catalogue import default_model_dir
from pipeline.qc import QCReport

from daemon import log
from daemon.audit.log import AuditLog
from daemon.audit.trail import audit_path, record_config_loaded
from daemon.config.settings import ConfigError, Settings, load_settings
from daemon.drift.service import DriftService
from daemon.intake.jobs import ClaimArea, Job
from daemon.intake.watcher import FolderWatcher, InotifyHub
from daemon.intake.zones import record_zones, zones_audit_log
from daemon.models.registry import ActiveSelection, Registry, RegistryError
from daemon.review.rework_watch import ReworkQueue
from daemon.service.claiming import Claimer, changed_since_claim, job_spec
from daemon.service.folders import FolderError, locked_folders
from daemon.service.notify import Notifier, watchdog_interval_s
from daemon.service.pool import Dispatcher, Outcome, PoolBroken
from daemon.service.publisher import Publisher
from daemon.service.recovery import recover
from daemon.service.snapshot import Lifetime, status_snapshot
from daemon.service.status import Counters, status_line, status_path, write_status
from daemon.service.workforce import inference_threads, make_dispatcher, worker_specs

__all__ = ["Service", "StartupError", "inference_threads"]

_log = log.get("veil.service")
_TICK_S = 0.25


class StartupError(Exception):
    """The service cannot run with this configuration or environment."""


class Service:
    def __init__(self, settings: Settings, *, config_path: Path | None = None, overrides: dict[str, Any] | None = None,
                 runner: str = "daemon.service.worker:PipelineRunner", notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.overrides = overrides or {}
        self.runner = runner
        self.notifier = notifier or Notifier()
        self.counters = Counters()
        self._stop = False
        self._reload = False
        self._parts: ExitStack | None = None  # what start_internals started, closed in reverse by stop
        self._grace_s = 0.0  # how long the stopping workers' jobs get to finish
        self._areas: dict[str, ClaimArea] = {}
        self._watchers: list[FolderWatcher] = []
        self._hub: InotifyHub | None = None
        self._pool: Dispatcher | None = None
        self._remote = False  # jobs on a broker (dispatch.backend = "celery"): they outlive this process
        self._publisher: Publisher | None = None
        self._drift: DriftService | None = None  # drift monitoring, spot checks, metrics (docs/drift.md)
        self._rework: ReworkQueue | None = None  # rework/ documents, re-rendered in a thread (docs/review.md)
        self._models = ActiveSelection()  # `veil models activate`'s choice, read at each start and reload
        self._queue: deque[Job] = deque()
        self._zones: dict[str, str] | None = None  # folder -> digest of the camera zones last audited
        self._running: dict[str, Job] = {}
        self._claimer = Claimer()
        self._state = "starting"
        self._started_at = datetime.now(timezone.utc)
        self._stopped_at: datetime | None = None
        self._last_ping = 0.0
        self._ping_every = min(1.0, watchdog_interval_s() or 1.0)

    # -- signals -----------------------------------------------------------------------------------------

    def _on_stop(self, signum, frame) -> None:
        self._stop = True

    def _on_hup(self, signum, frame) -> None:
        self._reload = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    # -- start and stop: the parts, in order ---------------------------------------------------------------

    def start_internals(self, models: ActiveSelection | None = None) -> None:
        """Start every part, or none: a failure stops what had started. ``models``: keep this model selection
        instead of reading active.json again."""
        self._models = models if models is not None else self._read_models()
        with ExitStack() as parts:
            try:
                self._start_parts(parts)
            except (FolderError, PoolBroken) as exc:
                raise StartupError(str(exc)) from None
            except OSError as exc:  # a folder, a document or the state directory the service cannot use
                raise StartupError(f"cannot start: {exc}") from None
            self._parts = parts.pop_all()

    def _start_parts(self, parts: ExitStack) -> None:
        settings = self.settings
        parts.callback(self._forget_areas)
        self._areas = parts.enter_context(locked_folders(settings))
        self._drift = self._start_drift()
        parts.callback(self._stop_drift)
        self._publisher = Publisher(settings, self._areas, self.counters, self._drift)
        parts.callback(self._publisher.abandon)
        parts.callback(self._release_running)  # after the workers stopped: what they did not finish goes back
        self._pool = self._start_pool()
        parts.callback(self._stop_pool)
        self._queue.extend(recover(settings, self._areas, self._publisher))
        self._start_intake(parts)
        self._rework = ReworkQueue(settings)
        parts.callback(self._stop_rework)
        self._audit_zones()

    def stop_internals(self, grace_s: float) -> None:
        """Stop intake, let running jobs finish within ``grace_s``, put the rest back."""
        self._grace_s = grace_s
        parts, self._parts = self._parts, None
        if parts is not None:
            parts.close()

    def _forget_areas(self) -> None:
        self._areas = {}

    def _start_drift(self) -> DriftService:
        try:
            return DriftService(self.settings)
        except OSError as exc:  # e.g. the metrics port is taken, or the drift store cannot be opened
            raise StartupError(f"drift monitoring or metrics: {exc}") from None

    def _stop_drift(self) -> None:
        drift, self._drift = self._drift, None
        if drift is not None:
            drift.close()

    def _start_pool(self) -> Dispatcher:
        pool = make_dispatcher(self.settings, worker_specs(self.settings, self._models, self.runner))
        self._remote = pool.remote
        self.notifier.status("connecting to the broker" if pool.remote else "loading models")
        pool.start()
        return pool

    def _stop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return  # broken: its workers are gone already
        for outcome in pool.stop(self._grace_s):
            self._handle(outcome)  # may queue a job again (a worker that died meanwhile)

    def _start_intake(self, parts: ExitStack) -> None:
        self._watchers = [FolderWatcher(folder, self.settings.watch) for folder in self.settings.folders]
        if self.settings.watch.mode == "inotify":
            try:
                self._hub = InotifyHub(self._watchers)
                self._hub.start()
            except OSError as exc:  # e.g. the inotify watch limit: rescans still find everything, later
                _log.error("inotify_unavailable", error=str(exc), rescan_interval_s=self.settings.watch.rescan_interval_s)
                self._hub = None
        parts.callback(self._stop_intake)
        for watcher in self._watchers:
            watcher.tick()  # the start-up rescan: whatever arrived while Veil was down

    def _stop_intake(self) -> None:
        if self._hub is not None:
            self._hub.stop()
            self._hub = None
        self._watchers = []
        while self._queue:  # claimed, never started: back to the ingest folder
            self._release(self._queue.popleft())

    def _stop_rework(self) -> None:
        rework, self._rework = self._rework, None
        if rework is not None:
            rework.close()  # finishes the document in hand

    def _release_running(self) -> None:
        while self._queue:
            self._release(self._queue.popleft())
        for job in list(self._running.values()):
            if self._remote:  # on the broker: it stays claimed, and the next start enqueues it again
                _log.info("job_left_on_broker", job=job.id, folder=job.record.folder)
                continue
            _log.info("job_interrupted", job=job.id, folder=job.record.folder)
            self._release(job)
        self._running.clear()

    def _release(self, job: Job) -> None:
        area = self._areas[job.record.folder]
        if not area.release(job):
            _log.info("job_kept_for_next_start", job=job.id, folder=job.record.folder, state=job.record.state)

    def _read_models(self) -> ActiveSelection:
        try:
            return Registry(self.settings.service.model_dir or default_model_dir()).selection()
        except RegistryError as exc:
            raise StartupError(f"active models: {exc}") from None

    def _audit_config(self) -> None:
        """``config.loaded`` in the audit log when the file changed since the last record (docs/audit.md)."""
        try:
            record_config_loaded(AuditLog(audit_path(self.settings)), self.config_path)
        except OSError as exc:  # the audit trail must not stop anonymization; the failure is logged
            _log.error("audit_write_failed", event="config.loaded", error=exc.strerror or str(exc))

    def _audit_zones(self) -> None:
        """``zones.configured`` for each folder whose camera zones are new or changed (docs/zones.md)."""
        try:
            self._zones = record_zones(zones_audit_log(self.settings), self.settings.folders, self._zones)
        except OSError as exc:  # the audit trail must not stop anonymization; the failure is logged
            _log.error("audit_write_failed", event="zones.configured", error=exc.strerror or str(exc))

    # -- the loop ----------------------------------------------------------------------------------------

    def run(self) -> int:
        self.install_signal_handlers()
        try:
            self.start_internals()
        except StartupError as exc:
            _log.error("startup_failed", error=str(exc))
            self.notifier.send(STATUS=f"failed to start: {exc}"[:500], ERRNO=1)
            return 1
        self._state = "running"
        self._audit_config()
        _log.info("ready", instance=self.settings.service.instance, workers=self.settings.service.workers,
                  folders=[f.name for f in self.settings.folders])
        self.notifier.ready(self._status_text())
        code = self._loop()
        self._state = "stopping"
        self.notifier.stopping(self._status_text())
        _log.info("stopping", in_flight=len(self._running), queued=len(self._queue))
        self.stop_internals(self.settings.service.stop_timeout_s)
        self._state = "stopped" if code == 0 else "failed"
        self._stopped_at = datetime.now(timezone.utc)
        self._write_status()
        _log.info("stopped", **self.counters.counts())
        return code

    def _loop(self) -> int:
        """Until SIGTERM (0), or until the service cannot go on (1: systemd restarts it)."""
        try:
            while not self._stop:
                if self._reload:
                    self._reload = False
                    self._do_reload()
                self.step()
        except PoolBroken as exc:  # workers no longer start (e.g. models gone)
            _log.error("workers_broken", error=str(exc))
            self._pool = None
            return 1
        except StartupError as exc:  # a reload failed, and so did going back to the running configuration
            _log.error("reload_fallback_failed", error=str(exc))
            return 1
        return 0

    def step(self) -> None:
        for watcher in self._watchers:
            watcher.tick()
        self._claim()
        self._dispatch()
        assert self._pool is not None
        for outcome in self._pool.poll(_TICK_S):
            self._handle(outcome)
        self._started_publisher().retry_due()
        if self._rework is not None:
            self._rework.tick()
        now = time.monotonic()
        if now - self._last_ping >= self._ping_every:
            self._last_ping = now
            self.notifier.send(WATCHDOG=1, STATUS=self._status_text())
            self._write_status()
            if self._drift is not None:
                self._drift.tick(self._queue_length(), self.counters.throughput()["files_per_minute_10m"])

    def _started_publisher(self) -> Publisher:
        assert self._publisher is not None, "started: start_internals made the publisher"
        return self._publisher

    def _claim(self) -> None:
        """Keep one waiting job per local worker's job slot; a flood stays in the ingest folders."""
        # Remote (a broker): as many as may be in flight, the broker holds them for every worker of the fleet.
        service = self.settings.service
        slots = (self._pool.free_slots() if self._remote and self._pool is not None
                 else service.workers * service.jobs_per_worker)
        want = slots - len(self._queue)
        if want > 0:
            self._queue.extend(self._claimer.claim(self._watchers, self._areas, want,
                                                    self.settings.watch.done_marker))

    def _dispatch(self) -> None:
        assert self._pool is not None
        while self._queue and self._pool.free_slots() > 0:
            if self._queue[0].record.alone and not self._pool.idle_workers():
                break  # it waits, first in line, for a worker to empty (rare: only after a crash)
            job = self._queue.popleft()
            if job.record.attempts >= self.settings.service.max_attempts:
                self._started_publisher().give_up(job)
                continue
            if not self._remote:  # a remote worker does it under the job's lock (daemon/dispatch/task.py)
                shutil.rmtree(job.staging, ignore_errors=True)  # leftovers of an interrupted attempt
                job.staging.mkdir(parents=True)
            job.record.attempts += 1
            job.save()  # counted before it runs: a file that kills the whole service still runs out of tries
            self._pool.submit(job_spec(job, self.settings.folder(job.record.folder)), alone=job.record.alone)
            self._running[job.id] = job

    def _handle(self, outcome: Outcome) -> None:
        job = self._running.pop(outcome.job_id, None)
        if job is None:
            return
        if self._remote:
            try:
                job.reload()  # a remote worker moved the journal on (processed, published)
            except (OSError, ValueError) as exc:
                _log.error("job_journal_unreadable", job=job.id, folder=job.record.folder, error=type(exc).__name__)
                return
        failure = outcome.failure if outcome.report_json is None else changed_since_claim(job)
        if failure or outcome.report_json is None:
            job.record.failures.append(failure or "unknown")
            if not outcome.charged:
                job.record.attempts -= 1  # a neighbour hung, or a crash no job can be blamed for: not its try
            job.record.alone = job.record.alone or outcome.alone
            job.save()
            self.counters.retried += 1
            _log.warning("job_attempt_failed", job=job.id, folder=job.record.folder, attempt=job.record.attempts,
                         reason=failure)
            if job.record.attempts >= self.settings.service.max_attempts:
                self._started_publisher().give_up(job)
            else:
                self._queue.append(job)
            return
        self._started_publisher().publish(job, QCReport.from_json(outcome.report_json))

    # -- reload ------------------------------------------------------------------------------------------

    def _do_reload(self) -> None:
        self.notifier.reloading()
        try:
            new = load_settings(self.config_path, **self.overrides)
        except ConfigError as exc:
            _log.error("reload_refused", error=str(exc))
            self.counters.error(kind="config", message=str(exc))
            self.notifier.ready(self._status_text())
            return
        _log.info("reloading")
        self._state = "reloading"
        self.stop_internals(self.settings.service.stop_timeout_s)
        old, self.settings = self.settings, new
        old_models = self._models
        try:
            self.start_internals()  # re-reads active.json: an activated model is picked up here
        except StartupError as exc:
            _log.error("reload_failed", error=str(exc))
            self.settings = old
            # The old configuration and models ran a moment ago; if even they fail, run() stops with an error.
            self.start_internals(old_models)
        else:
            self._audit_config()
        log.configure(self.settings.service.log_level, log_file_names=self.settings.service.log_file_names)
        self._state = "running"
        self.notifier.ready(self._status_text())
        _log.info("reloaded", models={task: m.sha256[:12] for task, m in self._models.tasks.items()})

    # -- status ------------------------------------------------------------------------------------------

    def _queue_length(self) -> int:
        return len(self._queue) + sum(w.ready_count + w.waiting_count for w in self._watchers)

    def _status_text(self) -> str:
        return status_line(self._queue_length(), len(self._running), self.counters)

    def _write_status(self) -> None:
        service = self.settings.service
        snapshot = status_snapshot(service, Lifetime(self._state, self._started_at, self._stopped_at),
                                   watchers=self._watchers, claimed=len(self._queue), running=self._running,
                                   pool=self._pool, counters=self.counters)
        try:
            write_status(status_path(service.resolved_state_dir(), service.instance), snapshot)
        except OSError as exc:
            _log.warning("status_not_written", error=exc.strerror or str(exc))
