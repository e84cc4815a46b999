"""``veil drift status | check | baseline | ack | report`` on a store filled with synthetic days."""

from __future__ import annotations

import json

import numpy as np
import pytest
import structlog

from daemon.audit.log import AuditLog
from daemon.cli import main
from daemon.drift.monitor import DriftConfig, DriftMonitor
from daemon.drift.store import DriftStore

from tests.unit.test_drift_monitor import START, Clock, _day


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    structlog.reset_defaults()  # the command bound structlog to this test's captured stderr


def _filled(tmp_path, alert: bool) -> None:
    clock = Clock()
    store = DriftStore(tmp_path / "drift.sqlite", instance="t", sample_per_day=300, seed=1)
    monitor = DriftMonitor(store, DriftConfig(), clock=clock)
    rng = np.random.default_rng(0)
    for day in range(9):
        _day(monitor, clock, rng, day)
    if alert:
        for day in (9, 10):
            _day(monitor, clock, rng, day, score=0.55)
    store.close()


def test_status_baseline_and_ack(tmp_path, capsys):
    _filled(tmp_path, alert=True)
    capsys.readouterr()
    args = ["drift", "--store-dir", str(tmp_path)]
    assert main([*args, "status"]) == 3  # an alert
    out = capsys.readouterr().out
    assert out.startswith("cam: alert") and "reference provisional" in out and "spot checks 10%" in out

    assert main([*args, "baseline", "--source", "cam", "--approve", "--by", "carol"]) == 0
    assert json.loads(capsys.readouterr().out)["approved_by"] == "carol"
    assert main([*args, "ack", "--source", "cam", "--by", "dave"]) == 0
    assert "spot-check rate 2%" in capsys.readouterr().out
    assert main([*args, "ack", "--source", "nope"]) == 2
    assert "unknown source" in capsys.readouterr().out
    audit = AuditLog(tmp_path / "audit.jsonl")
    assert [(r["event"], r["actor"]) for r in audit.records()] == [("drift_reference_approved", "carol"),
                                                                   ("drift_acknowledged", "dave")]
    assert audit.verify() == []

    assert main([*args, "status", "--json"]) == 3
    status = json.loads(capsys.readouterr().out)[0]
    assert status["reference"]["status"] == "approved" and status["spot_check"]["rate"] == 0.02


def test_check_and_report(tmp_path, capsys):
    _filled(tmp_path, alert=False)
    capsys.readouterr()
    args = ["drift", "--store-dir", str(tmp_path)]
    assert main([*args, "check"]) == 0  # every full day up to today's real date: nothing new is due
    capsys.readouterr()
    assert main([*args, "report", "--month", "2026-01", "--out", str(tmp_path / "rep")]) == 0
    html = tmp_path / "rep" / "veil-drift-2026-01.html"
    assert html.is_file() and str(html) in capsys.readouterr().out
    data = json.loads(html.with_suffix(".json").read_text())
    assert data["sources"][0]["days_checked"] == 9 - 7 and data["sources"][0]["state_now"] == "ok"
    assert START  # the synthetic calendar begins 2026-01-01


def test_a_missing_store_is_a_clear_error(tmp_path, capsys):
    assert main(["drift", "--store-dir", str(tmp_path), "status"]) == 2
    assert "no drift store" in capsys.readouterr().out
