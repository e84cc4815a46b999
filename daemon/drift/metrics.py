"""Prometheus metrics on localhost (prometheus-client), off unless ``[metrics] enabled``.

Label values come from the configuration only (folder names as ``source``, the two class labels, the
monitored feature names): never a file name, a path or anything taken from an input.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from pipeline.qc import QCReport

from daemon.drift.schema import FEATURES

STATE_VALUE = {"ok": 0, "warning": 1, "alert": 2}
_CLASSES = (("face", "face"), ("license_plate", "plate"))


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.files = Counter("veil_files", "Files finished, by disposition", ["source", "disposition"], registry=r)
        self.throughput = Gauge("veil_throughput_files_per_minute", "Files finished per minute (last 10 minutes)",
                                registry=r)
        self.queue = Gauge("veil_queue_depth", "Files waiting: settling, complete in ingest, claimed", registry=r)
        self.drift_state = Gauge("veil_drift_state", "Drift state per source and track: 0 ok, 1 warning, 2 alert",
                                 ["source", "track"], registry=r)
        self.psi = Gauge("veil_drift_psi_excess", "Latest PSI minus its no-drift expectation", ["source", "feature"],
                         registry=r)
        self.psi_threshold = Gauge("veil_drift_psi_threshold", "PSI excess threshold from the reference",
                                   ["source", "feature"], registry=r)
        self.spot_rate = Gauge("veil_spot_check_rate", "Share of clean files sent to spot check", ["source"], registry=r)
        self.scores = Histogram("veil_detection_score", "Scores of detections at or above the review floor",
                                ["source", "class"], buckets=[i / 10 for i in range(1, 11)], registry=r)
        self.per_file = Histogram("veil_detections_per_file", "Confident detections per file", ["source", "class"],
                                  buckets=[0, 1, 2, 3, 5, 10, 20, 50], registry=r)
        self._server: Any = None

    def serve(self, address: str, port: int) -> None:
        self._server = start_http_server(port, addr=address, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            server, thread = self._server
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._server = None

    def file_finished(self, source: str, report: QCReport) -> None:
        self.files.labels(source, report.disposition).inc()
        detector = (report.features or {}).get("detector") or {}
        for label, _ in _CLASSES:
            if label in detector:
                self.per_file.labels(source, label).observe(detector[label]["detections"])
        for record in report.detections:
            self.scores.labels(source, record.object_class).observe(record.score)

    def service(self, queue_depth: int, files_per_minute: float) -> None:
        self.queue.set(queue_depth)
        self.throughput.set(files_per_minute)

    def drift(self, source: str, status: dict[str, Any], last_check: dict[str, Any] | None) -> None:
        for track, state in status["tracks"].items():
            self.drift_state.labels(source, track).set(STATE_VALUE[state["state"]])
        self.spot_rate.labels(source).set(status["spot_check"]["rate"])
        known = {f.name for f in FEATURES}
        for name, item in ((last_check or {}).get("features") or {}).items():
            if name in known:
                self.psi.labels(source, name).set(item["psi"] - item["expected"])
                self.psi_threshold.labels(source, name).set(item["threshold"])
