"""The service: start, main loop, reload, stop. Signal handlers only set flags; the loop does the work.

Start: lock each ingest folder's processing area for this instance, start the workers (models loaded and
warmed up), resume the jobs a previous run left, rescan, then READY=1. The loop claims complete files, keeps
the workers fed (at most one waiting job per worker: a flood stays in ingest, not in memory), publishes
results and pings the systemd watchdog. SIGTERM stops intake, gives running jobs ``stop_timeout_s`` to finish,
and puts everything unfinished back. SIGHUP re-reads the configuration; an invalid one is refused and the
service keeps its current one.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.detect.catalogue import default_model_dir
from pipeline.qc import QCReport

from daemon import log
from daemon.audit.log import AuditLog
from daemon.audit.trail import audit_path, record_config_loaded
from daemon.drift.service import DriftService
from daemon.publish.fsutil import write_atomic
from daemon.intake.jobs import ClaimArea, InstanceBusy, Job
from daemon.models.registry import ActiveSelection, Registry, RegistryError, with_active_models
from daemon.service.notify import Notifier, watchdog_interval_s
from daemon.publish.outputs import finalize, missing_results, publish, sha256_or_none
from daemon.service.pool import Dispatcher, LocalPool, Outcome, PoolBroken
from daemon.review.rework_watch import ReworkQueue
from daemon.publish.reports import failed_report
from daemon.config.settings import ConfigError, Settings, load_settings
from daemon.intake.stability import StableFile
from daemon.service.status import Counters, status_line, status_path, write_status
from daemon.intake.watcher import FolderWatcher, InotifyHub
from daemon.service.worker import JobSpec, WorkerSpec
from daemon.intake.zones import record_zones, zone_edits, zones_audit_log

_log = log.get("veil.service")
_TICK_S = 0.25
_PUBLISH_RETRY_S = 30.0


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
        self._areas: dict[str, ClaimArea] = {}
        self._watchers: list[FolderWatcher] = []
        self._hub: InotifyHub | None = None
        self._pool: Dispatcher | None = None
        self._drift: DriftService | None = None  # drift monitoring, spot checks, metrics (README)
        self._rework: ReworkQueue | None = None  # rework/ documents, re-rendered in a thread (README)
        self._models = ActiveSelection()  # `veil models activate`'s choice, read at each start and reload
        self._queue: deque[Job] = deque()
        self._zones: dict[str, str] | None = None  # folder -> digest of the camera zones last audited
        self._running: dict[str, Job] = {}
        self._publish_later: list[tuple[float, Job, QCReport]] = []
        self._next_folder = 0
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

    # -- start and stop ----------------------------------------------------------------------------------

    def _prepare_folders(self) -> None:
        for folder in self.settings.folders:
            for path in (folder.ingest, *folder.destinations()):
                try:
                    path.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    self._unlock_all()
                    raise StartupError(f"folder {folder.name!r}: cannot create {path}: {exc.strerror}") from None
            area = ClaimArea(folder, self.settings.service.instance)
            try:
                area.lock()
            except InstanceBusy as exc:
                self._unlock_all()
                raise StartupError(str(exc)) from None
            self._areas[folder.name] = area

    def _unlock_all(self) -> None:
        for area in self._areas.values():
            area.unlock()
        self._areas = {}

    def _worker_specs(self) -> list[WorkerSpec]:
        service = self.settings.service
        model_dir = service.model_dir or default_model_dir()
        profiles = {name: with_active_models(params, self._models, model_dir).model_dump_json()
                    for name, params in self.settings.profiles.items()}
        devices = [service.devices[i % len(service.devices)] for i in range(service.workers)]
        return [
            WorkerSpec(index=i, device=devices[i], threads=inference_threads(service.threads, devices[i], devices),
                       precision=service.precision,
                       model_dir=str(service.model_dir) if service.model_dir else None, profiles=profiles,
                       runner=self.runner, log_level=service.log_level)
            for i in range(service.workers)
        ]

    def start_internals(self, models: ActiveSelection | None = None) -> None:
        """Start everything; ``models``: keep this model selection instead of reading active.json again."""
        self._models = models if models is not None else self._read_models()
        self._prepare_folders()
        try:
            self._drift = DriftService(self.settings)
        except OSError as exc:  # e.g. the metrics port is taken, or the drift store cannot be opened
            self._unlock_all()
            raise StartupError(f"drift monitoring or metrics: {exc}") from None
        service = self.settings.service
        pool = LocalPool(self._worker_specs(), job_timeout_s=service.job_timeout_s,
                         heartbeat_timeout_s=service.heartbeat_timeout_s)
        self.notifier.status("loading models")
        try:
            pool.start()
        except PoolBroken as exc:
            self._unlock_all()
            self._drift.close()
            raise StartupError(str(exc)) from None
        self._pool = pool
        self._recover()
        self._watchers = [FolderWatcher(folder, self.settings.watch) for folder in self.settings.folders]
        if self.settings.watch.mode == "inotify":
            try:
                self._hub = InotifyHub(self._watchers)
                self._hub.start()
            except OSError as exc:  # e.g. the inotify watch limit: rescans still find everything, later
                _log.error("inotify_unavailable", error=str(exc), rescan_interval_s=self.settings.watch.rescan_interval_s)
                self._hub = None
        for watcher in self._watchers:
            watcher.tick()  # the start-up rescan: whatever arrived while Veil was down
        self._rework = ReworkQueue(self.settings)
        self._audit_zones()

    def _read_models(self) -> ActiveSelection:
        try:
            return Registry(self.settings.service.model_dir or default_model_dir()).selection()
        except RegistryError as exc:
            raise StartupError(f"active models: {exc}") from None

    def _audit_config(self) -> None:
        """``config.loaded`` in the audit log when the file changed since the last record (README "Audit log")."""
        try:
            record_config_loaded(AuditLog(audit_path(self.settings)), self.config_path)
        except OSError as exc:  # the audit trail must not stop anonymization; the failure is logged
            _log.error("audit_write_failed", event="config.loaded", error=exc.strerror or str(exc))

    def _audit_zones(self) -> None:
        """``zones.configured`` for each folder whose camera zones are new or changed (README "Camera zones")."""
        try:
            self._zones = record_zones(zones_audit_log(self.settings), self.settings.folders, self._zones)
        except OSError as exc:  # the audit trail must not stop anonymization; the failure is logged
            _log.error("audit_write_failed", event="zones.configured", error=exc.strerror or str(exc))

    def stop_internals(self, grace_s: float) -> None:
        """Stop intake, let running jobs finish within ``grace_s``, put the rest back."""
        if self._hub is not None:
            self._hub.stop()
            self._hub = None
        self._watchers = []
        while self._queue:
            self._release(self._queue.popleft())
        if self._pool is not None:
            for outcome in self._pool.stop(grace_s):
                self._handle(outcome)  # may queue a job again (a worker that died meanwhile)
            self._pool = None
        while self._queue:
            self._release(self._queue.popleft())
        for job in list(self._running.values()):
            _log.info("job_interrupted", job=job.id, folder=job.record.folder)
            self._release(job)
        self._running.clear()
        for _, job, _report in self._publish_later:
            _log.warning("publish_pending_at_stop", job=job.id, folder=job.record.folder)
        self._publish_later.clear()
        if self._drift is not None:
            self._drift.close()
            self._drift = None
        if self._rework is not None:
            self._rework.close()  # finishes the document in hand
            self._rework = None
        self._unlock_all()

    def _release(self, job: Job) -> None:
        area = self._areas[job.record.folder]
        if not area.release(job):
            _log.info("job_kept_for_next_start", job=job.id, folder=job.record.folder, state=job.record.state)

    def _recover(self) -> None:
        for name, area in self._areas.items():
            for job in area.recover():
                job.record.folder = name  # the folder holding it decides, even if it was renamed since
                _log.info("job_recovered", job=job.id, folder=name, state=job.record.state, attempts=job.record.attempts)
                if job.record.state == "claimed":
                    if job.record.attempts:
                        job.record.failures.append("interrupted (the service stopped during the job)")
                        job.save()
                    self._queue.append(job)
                elif job.record.state == "processed":
                    try:
                        self._publish(job, QCReport.from_json(job.report_path.read_bytes()))
                    except (OSError, ValueError) as exc:
                        _log.error("recovered_report_unreadable", job=job.id, error=type(exc).__name__)
                        job.record.state = "claimed"
                        job.save()
                        self._queue.append(job)
                else:  # published: only the original is left to archive or delete
                    finalize(job, area, self.settings.folder(job.record.folder), _disposition_of(job))

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
        code = 0
        try:
            while not self._stop:
                if self._reload:
                    self._reload = False
                    self._do_reload()
                self.step()
        except PoolBroken as exc:  # workers no longer start (e.g. models gone): stop, systemd restarts us
            _log.error("workers_broken", error=str(exc))
            self._pool = None
            code = 1
        self._state = "stopping"
        self.notifier.stopping(self._status_text())
        _log.info("stopping", in_flight=len(self._running), queued=len(self._queue))
        self.stop_internals(self.settings.service.stop_timeout_s)
        self._state = "stopped" if code == 0 else "failed"
        self._stopped_at = datetime.now(timezone.utc)
        self._write_status()
        _log.info("stopped", **self._counts())
        return code

    def step(self) -> None:
        for watcher in self._watchers:
            watcher.tick()
        self._claim()
        self._dispatch()
        assert self._pool is not None
        for outcome in self._pool.poll(_TICK_S):
            self._handle(outcome)
        self._retry_publishing()
        if self._rework is not None:
            self._rework.tick()
        now = time.monotonic()
        if now - self._last_ping >= self._ping_every:
            self._last_ping = now
            self.notifier.send(WATCHDOG=1, STATUS=self._status_text())
            self._write_status()
            if self._drift is not None:
                self._drift.tick(self._queue_length(), self.counters.throughput()["files_per_minute_10m"])

    def _claim(self) -> None:
        """Keep one waiting job per worker; a flood stays in the ingest folders."""
        want = self.settings.service.workers - len(self._queue)
        idle_rounds = 0
        while want > 0 and self._watchers and idle_rounds < len(self._watchers):
            watcher = self._watchers[self._next_folder % len(self._watchers)]
            self._next_folder += 1
            stable = watcher.take()
            if stable is None:
                idle_rounds += 1
                continue
            idle_rounds = 0
            job = self._claim_one(watcher, stable)
            if job is not None:
                self._queue.append(job)
                want -= 1

    def _claim_one(self, watcher: FolderWatcher, stable: StableFile) -> Job | None:
        area = self._areas[watcher.folder.name]
        try:
            job = area.claim(stable)
        except OSError as exc:
            _log.error("claim_failed", folder=watcher.folder.name, error=exc.strerror or str(exc))
            return None
        if job is None:
            if stable.path.exists():
                watcher.put_back(stable.path)
            return None
        area.remove_marker(stable, self.settings.watch.done_marker)
        _log.info("job_claimed", job=job.id, folder=job.record.folder, size=job.record.size,
                  **log.name_field(job.record.rel))
        return job

    def _dispatch(self) -> None:
        assert self._pool is not None
        while self._queue and self._pool.free_slots() > 0:
            job = self._queue.popleft()
            if job.record.attempts >= self.settings.service.max_attempts:
                self._give_up(job)
                continue
            shutil.rmtree(job.staging, ignore_errors=True)  # leftovers of an interrupted attempt
            job.staging.mkdir(parents=True)
            job.record.attempts += 1
            job.save()  # counted before it runs: a file that kills the whole service still runs out of tries
            folder = self.settings.folder(job.record.folder)
            self._pool.submit(JobSpec(job_id=job.id, profile=folder.profile, src=str(job.input_path),
                                      dst=str(job.staged_output), name=job.record.rel, edits=zone_edits(folder)))
            self._running[job.id] = job

    def _handle(self, outcome: Outcome) -> None:
        job = self._running.pop(outcome.job_id, None)
        if job is None:
            return
        failure = outcome.failure if outcome.report_json is None else _changed_since_claim(job)
        if failure or outcome.report_json is None:
            job.record.failures.append(failure or "unknown")
            job.save()
            self.counters.retried += 1
            _log.warning("job_attempt_failed", job=job.id, folder=job.record.folder, attempt=job.record.attempts,
                         reason=failure)
            if job.record.attempts >= self.settings.service.max_attempts:
                self._give_up(job)
            else:
                self._queue.append(job)
            return
        report = QCReport.from_json(outcome.report_json)
        self._publish(job, report)

    def _give_up(self, job: Job) -> None:
        reasons = "; ".join(job.record.failures[-self.settings.service.max_attempts:]) or "unknown"
        message = f"gave up after {job.record.attempts} attempts: {reasons}"
        sha = sha256_or_none(job.input_path)  # an unreadable input must still get its error sidecar
        self._publish(job, failed_report(job.record.rel, job.input_path, sha, "error", message))

    def _publish(self, job: Job, report: QCReport) -> None:
        folder = self.settings.folder(job.record.folder)
        area = self._areas[folder.name]
        if job.record.state == "claimed" and missing_results(job, report):
            missing = ", ".join(missing_results(job, report))
            sha = report.input.sha256
            report = failed_report(job.record.rel, job.input_path, sha, "processing",
                                   f"the pipeline reported {report.disposition!r} but did not write: {missing}")
        try:
            if job.record.state == "claimed":
                write_atomic(job.report_path, report.to_json().encode())
                job.record.state = "processed"
                job.save()
            result = publish(job, folder, report)
            finalize(job, area, folder, report.disposition)
        except OSError as exc:  # disk full, permissions, a share gone away: keep the job, try again later
            _log.error("publish_failed", job=job.id, folder=folder.name, error=exc.strerror or str(exc))
            self.counters.error(job=job.id, folder=folder.name, kind="publish", message=exc.strerror or str(exc))
            self._publish_later.append((time.monotonic() + _PUBLISH_RETRY_S, job, report))
            return
        self.counters.finished(report.disposition, result.duplicate)
        fields: dict[str, Any] = {"job": job.id, "folder": folder.name, "disposition": report.disposition,
                                  "duplicate": result.duplicate, "seconds": round(report.processing_seconds, 3),
                                  "attempts": job.record.attempts}
        if report.error is not None:
            fields["error_kind"] = report.error.kind
            error = {"job": job.id, "folder": folder.name, "kind": report.error.kind}
            if self.settings.service.log_file_names:
                fields["error"] = report.error.message
                error.update(name=job.record.rel, message=report.error.message)
            self.counters.error(**error)
        if report.review_reasons:
            fields["review_reasons"] = len(report.review_reasons)
        _log.info("job_finished", **fields, **log.name_field(result.name))
        if self._drift is not None:
            self._drift.finished(folder, report, result.name, result.duplicate)

    def _retry_publishing(self) -> None:
        if not self._publish_later:
            return
        now = time.monotonic()
        due = [item for item in self._publish_later if item[0] <= now]
        self._publish_later = [item for item in self._publish_later if item[0] > now]
        for _, job, report in due:
            self._publish(job, report)

    # -- reload ------------------------------------------------------------------------------------------

    def _do_reload(self) -> None:
        self.notifier.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
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
            self.start_internals(old_models)  # the old configuration and models ran a moment ago
        else:
            self._audit_config()
        log.configure(self.settings.service.log_level, log_file_names=self.settings.service.log_file_names)
        self._state = "running"
        self.notifier.ready(self._status_text())
        _log.info("reloaded", models={task: m.sha256[:12] for task, m in self._models.tasks.items()})

    # -- status ------------------------------------------------------------------------------------------

    def _queue_length(self) -> int:
        return len(self._queue) + sum(w.ready_count + w.waiting_count for w in self._watchers)

    def _counts(self) -> dict[str, int]:
        c = self.counters
        return {"done": c.done, "review": c.review, "failed": c.failed, "duplicate": c.duplicate, "retried": c.retried}

    def _status_text(self) -> str:
        return status_line(self._queue_length(), len(self._running), self.counters)

    def _write_status(self) -> None:
        service = self.settings.service
        in_flight = []
        if self._pool is not None:
            for item in self._pool.in_flight():
                job = self._running.get(item.job_id)
                entry: dict[str, Any] = {"job": item.job_id, "worker": item.worker, "pid": item.pid,
                                         "running_s": round(time.time() - item.started, 1)}
                if job is not None:
                    entry.update(folder=job.record.folder, attempt=job.record.attempts)
                    if service.log_file_names:
                        entry["name"] = job.record.rel
                in_flight.append(entry)
        pool = self._pool
        snapshot = {
            "instance": service.instance,
            "pid": os.getpid(),
            "state": self._state,
            "started_at": self._started_at.isoformat(timespec="seconds"),
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "stopped_at": self._stopped_at.isoformat(timespec="seconds") if self._stopped_at else None,
            "queue": {
                "waiting_to_settle": sum(w.waiting_count for w in self._watchers),
                "complete_in_ingest": sum(w.ready_count for w in self._watchers),
                "claimed": len(self._queue),
            },
            "in_flight": in_flight,
            "workers": [{"index": i, "pid": pid} for i, pid in enumerate(pool.worker_pids())] if isinstance(pool, LocalPool) else [],
            "worker_restarts": pool.restarts if isinstance(pool, LocalPool) else 0,
            "counts": self._counts(),
            "throughput": self.counters.throughput(),
            "last_errors": list(self.counters.errors),
        }
        try:
            write_status(status_path(service.resolved_state_dir(), service.instance), snapshot)
        except OSError as exc:
            _log.warning("status_not_written", error=exc.strerror or str(exc))


def inference_threads(configured: int, device: str, devices: list[str]) -> int:
    """onnxruntime threads for one worker: as configured, else the machine's cores shared among the CPU
    workers, so that several workers never oversubscribe the cores (each would take them all by default)."""
    if configured or device != "cpu":
        return configured
    return max(1, (os.cpu_count() or 1) // devices.count("cpu"))


def _changed_since_claim(job: Job) -> str | None:
    """A writer still holding the claimed file open may have changed it under the worker: then the result
    may mix two versions. Record the new state and say why, so the job runs again on what is there now."""
    try:
        st = os.lstat(job.input_path)
    except OSError:
        return None  # gone: publishing reports it (a failed job whose input vanished still gets its sidecar)
    if (st.st_size, st.st_mtime_ns) == (job.record.size, job.record.mtime_ns):
        return None
    job.record.size, job.record.mtime_ns = st.st_size, st.st_mtime_ns
    return "the input changed while it was processed"


def _disposition_of(job: Job) -> str:
    try:
        return QCReport.from_json(job.report_path.read_bytes()).disposition
    except (OSError, ValueError):
        return "done"  # unknown: treat the original as a success's (archived by default), never lose it
