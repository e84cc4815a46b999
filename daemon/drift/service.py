"""The drift monitor inside ``veil serve``: intake after each publish, spot checks, daily checks, metrics.

Nothing here may hold up or fail a job: every call is guarded, and a fault is logged and counted.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.qc import QCReport

from daemon import log
from daemon.audit.log import AUDIT_NAME, AuditLog
from daemon.config.settings import FolderSettings, Settings
from daemon.drift.config import DriftConfig
from daemon.drift.monitor import DriftMonitor
from daemon.drift.sampling import picked
from daemon.drift.store import DB_NAME, DriftStore

_log = log.get("veil.drift")
_CHECK_BUDGET_S = 2.0  # per loop tick: the main loop must keep feeding workers and pinging the watchdog


def drift_config(settings: Settings) -> DriftConfig:
    d = settings.drift
    return DriftConfig(
        spot_check_rate=d.spot_check_rate, alert_spot_check_rate=d.alert_spot_check_rate,
        reference_min_days=d.reference_min_days, reference_min_files=d.reference_min_files,
        window_min_files=d.window_min_files, window_max_days=d.window_max_days, ks_alpha=d.ks_alpha,
        psi_floor=d.psi_floor, proportion_alpha=d.proportion_alpha, proportion_limit=d.proportion_limit,
        hysteresis_days=d.hysteresis_days,
    )


def open_monitor(settings: Settings) -> DriftMonitor:
    where = settings.drift.resolved_store_dir(settings.service)
    store = DriftStore(where / DB_NAME, instance=settings.service.instance, sample_per_day=settings.drift.sample_per_day)
    return DriftMonitor(store, drift_config(settings), audit=AuditLog(where / AUDIT_NAME))


class DriftService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.monitor = open_monitor(settings) if settings.drift.enabled else None
        self.metrics = None
        if settings.metrics.enabled:
            from daemon.drift.metrics import Metrics

            self.metrics = Metrics()
            self.metrics.serve(settings.metrics.address, settings.metrics.port)
            _log.info("metrics_listening", address=settings.metrics.address, port=settings.metrics.port)
        self._next_check = 0.0

    def finished(self, folder: FolderSettings, report: QCReport, published_name: str, duplicate: bool) -> None:
        """After a job is published: count it, learn from it, and maybe copy it for a spot check."""
        try:
            if self.metrics is not None:
                self.metrics.file_finished(folder.name, report)
            if self.monitor is None or duplicate or report.disposition == "failed":
                return
            self.monitor.observe(folder.name, report)
            if report.disposition == "done" and picked(report.input.sha256, self.monitor.spot_rate(folder.name)):
                from daemon.publish.outputs import publish_spot_check

                publish_spot_check(folder, published_name)
                _log.info("spot_check_copied", folder=folder.name, **log.name_field(published_name))
        except Exception as exc:  # noqa: BLE001 - monitoring must never fail a published job
            _log.error("drift_intake_failed", folder=folder.name, error=f"{type(exc).__name__}: {exc}")

    def tick(self, queue_depth: int, files_per_minute: float) -> None:
        """From the service loop: daily checks when due, and the service gauges."""
        try:
            if self.metrics is not None:
                self.metrics.service(queue_depth, files_per_minute)
            now = time.monotonic()
            if self.monitor is None or now < self._next_check:
                return
            self.monitor.run_due(budget_s=_CHECK_BUDGET_S)
            # a long backlog (e.g. after downtime) is worked off a slice per second, between jobs
            self._next_check = now + (1.0 if self.monitor.behind else self.settings.drift.check_interval_s)
            if self.metrics is not None:
                for source in self.monitor.store.sources():
                    checks = self.monitor.store.checks(source)
                    self.metrics.drift(source, self.monitor.status(source), checks[-1] if checks else None)
        except Exception as exc:  # noqa: BLE001 - a broken store is reported, the service keeps anonymizing
            _log.error("drift_check_failed", error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        if self.monitor is not None:
            self.monitor.store.close()

    def status(self) -> dict[str, Any]:
        if self.monitor is None:
            return {}
        return {s: self.monitor.status_level(s) for s in self.monitor.store.sources()}
