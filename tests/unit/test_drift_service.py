"""Drift monitoring inside the real service loop (fake pipeline, real workers, folders and HTTP):
intake into the store, spot-check copies, and a Prometheus scrape."""

from __future__ import annotations

import socket
import sqlite3
import urllib.request
from pathlib import Path

from daemon.config.settings import load_settings, trial_folder
from daemon.service.lifecycle import Service

from tests.unit.test_daemon_service import outputs, run_until

RUNNER = f"{__name__}:FeatureRunner"


class FeatureRunner:
    """Stands in for the pipeline: copies the file and reports real features of a small synthetic picture."""

    def __init__(self, spec) -> None:
        pass

    def run(self, job):
        from datetime import datetime, timezone

        import numpy as np

        from pipeline.features import image_features
        from pipeline.params import Params
        from pipeline.qc import FileInfo, ModelRecord, QCReport
        from pipeline.records import Detections

        data = Path(job.src).read_bytes()
        Path(job.dst).write_bytes(data)
        rgb = np.full((48, 64, 3), 40 * len(data) % 255, dtype=np.uint8)
        dets = Detections(np.array([[4, 4, 20, 24]]), np.array([0.9]), np.array([1]))
        report = QCReport(veil_version="t", created_at=datetime.now(timezone.utc), input=FileInfo(name=job.name),
                          output=FileInfo(name=job.name),
                          models=[ModelRecord(name="f", task="face", family="x", sha256="ab" * 32, providers=["cpu"])])
        report.detections = []
        report.features = image_features(Path(job.src), rgb, dets, Params(), "PNG")
        return report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_files_are_counted_sampled_for_spot_checks_and_scraped(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "in" / name).write_bytes(name.encode() * 3)
    port = _free_port()
    settings = load_settings(
        None,
        folders=[trial_folder(tmp_path / "in", tmp_path / "out", None, None)],
        watch={"settle_s": 0.0, "mode": "poll", "poll_interval_s": 0.2},
        service={"instance": "t", "workers": 1, "state_dir": tmp_path / "state", "heartbeat_timeout_s": 30},
        drift={"spot_check_rate": 1.0, "store_dir": tmp_path / "drift"},
        metrics={"enabled": True, "port": port},
    )
    service = Service(settings, runner=RUNNER)
    service.start_internals()
    try:
        run_until(service, lambda: service.counters.done == 2)
        service.step()  # one more tick: the gauges
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        service.stop_internals(5)
    assert outputs(tmp_path / "spotcheck") == ["a.png", "a.png.veil.json", "b.png", "b.png.veil.json"]
    assert outputs(tmp_path / "out") == outputs(tmp_path / "spotcheck")
    with sqlite3.connect(tmp_path / "drift" / "drift.sqlite") as db:
        assert db.execute("SELECT SUM(n) FROM day_files WHERE source='default'").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 2
    assert 'veil_files_total{disposition="done",source="default"} 2.0' in body
    assert 'veil_detections_per_file_count{class="face",source="default"} 2.0' in body
    assert "veil_queue_depth" in body and "veil_throughput_files_per_minute" in body
    assert "a.png" not in body and "b.png" not in body  # labels come from the configuration only


def test_spot_checks_off_and_metrics_off_by_default(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"x")
    settings = load_settings(
        None,
        folders=[trial_folder(tmp_path / "in", tmp_path / "out", None, None)],
        watch={"settle_s": 0.0, "mode": "poll", "poll_interval_s": 0.2},
        service={"instance": "t", "workers": 1, "state_dir": tmp_path / "state", "heartbeat_timeout_s": 30},
        drift={"spot_check_rate": 0.0, "store_dir": tmp_path / "drift"},
    )
    service = Service(settings, runner=RUNNER)
    service.start_internals()
    try:
        assert service._drift is not None and service._drift.metrics is None
        run_until(service, lambda: service.counters.done == 1)
    finally:
        service.stop_internals(5)
    assert outputs(tmp_path / "spotcheck") == []
