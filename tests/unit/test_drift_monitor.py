"""The monitor's plumbing on synthetic feature vectors: reference, windows, hysteresis, events, audit.

The quality claims (no false alerts over 1,000 source-days, every shift caught within 3 days) are made on
real control images in tests/integration/test_drift_simulation.py; these tests pin the rules themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

from daemon.audit.log import AuditLog
from daemon.drift.monitor import DriftConfig, DriftMonitor
from daemon.drift.schema import FEATURES
from daemon.drift.store import DriftStore, Observation

DAY = 86400.0
START = 20454


class Clock:
    def __init__(self) -> None:
        self.now = START * DAY

    def __call__(self) -> float:
        return self.now


def _vectors(rng: np.random.Generator, n: int, *, score: float = 0.8, gray: float = 0.1) -> list[dict[str, float]]:
    rows = []
    for _ in range(n):
        row = {f.name: float(rng.normal(50, 10)) for f in FEATURES if f.kind == "continuous"}
        row["gray"] = float(rng.random() < gray)
        for short in ("face", "plate"):
            row[f"{short}_top_score"] = float(np.clip(rng.normal(score, 0.05), 0, 1))
            row[f"{short}_detections"] = float(rng.poisson(2))
            row[f"{short}_low_band"] = float(rng.poisson(0.3))
            row[f"{short}_median_size"] = float(abs(rng.normal(0.1, 0.02)))
            row[f"{short}_empty"] = float(rng.random() < 0.1)
        rows.append(row)
    return rows


@pytest.fixture
def setup(tmp_path):
    clock = Clock()
    store = DriftStore(tmp_path / "drift.sqlite", instance="test", sample_per_day=300, seed=1)
    audit = AuditLog(tmp_path / "audit.jsonl")
    monitor = DriftMonitor(store, DriftConfig(), clock=clock, audit=audit)
    yield monitor, clock, audit
    store.close()


def _day(monitor, clock, rng, day, n=350, resolution="1920x1080", **kw):
    start = (START + day) * DAY
    rows = _vectors(rng, n, **kw)
    times = np.sort(start + rng.uniform(8 * 3600, 18 * 3600, n))
    fmt = {"resolution": resolution, "codec": "jpeg", "jpeg_quality": "90", "mode": "colour"}
    clock.now = start + 12 * 3600
    monitor.observe_many("cam", [Observation(float(t), r, dict(fmt), "m1") for t, r in zip(times, rows)])
    clock.now = start + DAY + 60
    return monitor.run_due(clock.now)


def test_learning_until_seven_days_and_a_thousand_files_then_a_provisional_reference(setup):
    monitor, clock, _ = setup
    rng = np.random.default_rng(0)
    for day in range(6):
        assert _day(monitor, clock, rng, day)[-1]["status"] == "learning"
    assert monitor.store.active_reference("cam") is None
    assert _day(monitor, clock, rng, 6)[-1]["status"] == "reference"
    ref = monitor.store.active_reference("cam")
    assert ref["status"] == "provisional" and ref["last_day"] - ref["first_day"] == 6 and ref["files"] >= 1000
    assert _day(monitor, clock, rng, 7)[-1]["status"] == "checked"


def test_a_small_window_is_extended_back_and_below_the_minimum_is_insufficient_never_an_alert(setup):
    monitor, clock, _ = setup
    rng = np.random.default_rng(1)
    for day in range(7):
        _day(monitor, clock, rng, day)
    result = _day(monitor, clock, rng, 7, n=120, score=0.3)
    assert result[-1]["status"] == "insufficient data"
    result = _day(monitor, clock, rng, 8, n=200, score=0.3)
    assert result[-1]["status"] == "checked" and result[-1]["window"] == [START + 7, START + 8]
    assert monitor.store.state("cam", "detector")["state"] == "ok"  # one drifted day is not enough


def test_risky_detector_drift_needs_two_days_to_raise_and_two_to_clear(setup):
    monitor, clock, audit = setup
    rng = np.random.default_rng(2)
    for day in range(10):
        _day(monitor, clock, rng, day)
    first = _day(monitor, clock, rng, 10, score=0.6)[-1]
    assert first["detector_level"] == "alert" and "face_top_score" in first["detector_signals"]
    assert monitor.status_level("cam") == "ok"
    assert monitor.spot_rate("cam") == pytest.approx(0.02)
    _day(monitor, clock, rng, 11, score=0.6)
    assert monitor.status_level("cam") == "alert"
    assert monitor.spot_rate("cam") == pytest.approx(0.10)
    _day(monitor, clock, rng, 12)
    assert monitor.status_level("cam") == "alert"  # one clean day does not clear it
    _day(monitor, clock, rng, 13)
    assert monitor.status_level("cam") == "ok"
    assert monitor.spot_rate("cam") == pytest.approx(0.10)  # until someone acknowledges
    monitor.acknowledge("cam", "alice")
    assert monitor.spot_rate("cam") == pytest.approx(0.02)
    assert [r["event"] for r in audit.records()] == ["drift_acknowledged"]


def test_higher_scores_are_drift_but_not_risky(setup):
    monitor, clock, _ = setup
    rng = np.random.default_rng(3)
    for day in range(8):
        _day(monitor, clock, rng, day)
    result = _day(monitor, clock, rng, 8, score=0.95)[-1]
    assert result["detector_level"] == "warning"


def test_a_new_resolution_is_an_event_at_once_but_only_after_the_reference(setup):
    monitor, clock, _ = setup
    rng = np.random.default_rng(4)
    _day(monitor, clock, rng, 0, resolution="640x480")  # learning: new values are expected
    for day in range(1, 8):
        _day(monitor, clock, rng, day)
    assert not [e for e in monitor.store.events("cam") if e["kind"] == "format_change"]
    _day(monitor, clock, rng, 8, resolution="1280x720")
    changes = [e for e in monitor.store.events("cam") if e["kind"] == "format_change"]
    assert [(e["key"], e["value"]) for e in changes] == [("resolution", "1280x720")]
    assert changes[0]["at"] < (START + 9) * DAY  # raised with the first file, not at the daily check


def test_approval_is_an_audit_event_and_a_new_model_invalidates_the_detector_reference(setup):
    monitor, clock, audit = setup
    rng = np.random.default_rng(5)
    for day in range(8):
        _day(monitor, clock, rng, day)
    ref = monitor.approve("cam", "bob")
    assert ref["status"] == "approved" and ref["approved_by"] == "bob"
    assert audit.records()[-1]["event"] == "drift_reference_approved" and audit.verify() == []
    start = (START + 8) * DAY
    rows = _vectors(rng, 350, score=0.5)
    fmt = {"resolution": "1920x1080", "codec": "jpeg", "jpeg_quality": "90", "mode": "colour"}
    monitor.observe_many("cam", [Observation(start + 3600 + i, r, fmt, "m2") for i, r in enumerate(rows)])
    result = monitor.run_due((START + 9) * DAY + 60)[-1]
    assert result["detector_level"] is None and result["detector_reference"].startswith("no files")
    assert [e["kind"] for e in monitor.store.events("cam")][-1] == "detector_reference_invalid"


def test_checks_due_are_worked_off_within_a_time_budget(setup):
    monitor, clock, _ = setup
    rng = np.random.default_rng(6)
    start = START * DAY
    fmt = {"resolution": "1920x1080", "codec": "jpeg", "jpeg_quality": "90", "mode": "colour"}
    for day in range(10):  # ten days of files, nothing checked yet (the service was down)
        rows = _vectors(rng, 200)
        monitor.observe_many("cam", [Observation(start + day * DAY + 3600 + i, r, fmt, "m1") for i, r in enumerate(rows)])
    first = monitor.run_due((START + 10) * DAY + 60, budget_s=0.0)
    assert len(first) == 1 and monitor.behind  # one check, then the budget is spent
    rest = monitor.run_due((START + 10) * DAY + 60)
    assert len(rest) == 9 and not monitor.behind
    assert monitor.store.last_checked_day("cam") == START + 9
