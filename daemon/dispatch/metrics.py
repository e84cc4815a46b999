"""Prometheus metrics of one `veil worker` node, served by the child that runs the jobs (its only process
that sees them), on ``[metrics] address`` and the node's port. A replaced child starts its counters again,
which Prometheus reads as a counter reset. Labels: the node name, the queue kind, the answer's status and
the disposition: never a file name or a path."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from pipeline.qc import QCReport

from daemon.dispatch.payload import JobResult

_SECONDS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)


def metrics_port(base: int, unit: str) -> int:
    """The node's port on a host with several: ``base`` for the CPU unit, base + 1 + k for GPU k; 0: none."""
    if not base:
        return 0
    return base if unit == "cpu" else base + 1 + int(unit)


class WorkerMetrics:
    def __init__(self, node: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.node = node
        self.jobs = Counter("veil_worker_jobs", "Deliveries answered, by queue kind, status and disposition",
                            ["node", "kind", "status", "disposition"], registry=r)
        self.seconds = Histogram("veil_worker_job_seconds", "Time per delivery, from start to answer",
                                 ["node", "kind"], buckets=_SECONDS, registry=r)
        self.busy = Gauge("veil_worker_busy", "1 while a job runs", ["node"], registry=r)
        self.started = Gauge("veil_worker_job_started_timestamp_seconds", "When the running job started (0: idle)",
                             ["node"], registry=r)
        self._since = 0.0
        self._server: Any = None

    def serve(self, address: str, port: int) -> None:
        self._server = start_http_server(port, addr=address, registry=self.registry)

    def job_started(self) -> None:
        self._since = time.monotonic()
        self.busy.labels(self.node).set(1)
        self.started.labels(self.node).set(time.time())

    def job_finished(self, kind: str, result: JobResult) -> None:
        disposition = QCReport.from_json(result.report_json).disposition if result.report_json else "none"
        self.jobs.labels(self.node, kind, result.status, disposition).inc()
        self.seconds.labels(self.node, kind).observe(time.monotonic() - self._since)
        self.busy.labels(self.node).set(0)
        self.started.labels(self.node).set(0)
