"""After a model activation the drift reference is rebuilt from the new model's days, and both steps are
audited (synthetic feature vectors, as in test_drift_monitor.py)."""

from __future__ import annotations

import numpy as np

from daemon.drift.store import Observation

from tests.unit.test_drift_monitor import DAY, START, _day, _vectors, setup  # noqa: F401

FORMAT = {"resolution": "1920x1080", "codec": "jpeg", "jpeg_quality": "90", "mode": "colour"}


def _new_model_day(monitor, clock, rng, day: int) -> list[dict]:
    start = (START + day) * DAY
    clock.now = start + 12 * 3600
    rows = _vectors(rng, 350, score=0.6)
    monitor.observe_many("cam", [Observation(start + 3600 + i, r, FORMAT, "m2") for i, r in enumerate(rows)])
    clock.now = start + DAY + 60
    return monitor.run_due(clock.now)


def test_an_activation_rebuilds_the_reference_from_the_new_models_days(setup):
    monitor, clock, audit = setup
    rng = np.random.default_rng(7)
    for day in range(8):
        _day(monitor, clock, rng, day)
    old = monitor.store.active_reference("cam")
    assert old["models"] == "m1"

    clock.now = (START + 8) * DAY + 3600  # the operator activates a model on day 8
    monitor.schedule_rebaseline("cam", by="alice", reason='{"task": "face", "model": "m2"}')
    assert monitor.store.pending_rebaseline("cam")["after_day"] == START + 8
    assert monitor.status("cam")["rebaseline"]["by"] == "alice"  # shown by `veil drift status`
    assert audit.records()[-1]["event"] == "drift_rebaseline_scheduled" and audit.records()[-1]["actor"] == "alice"

    for day in range(8, 15):  # the activation day does not count; days 9..14 are six of the seven needed
        _new_model_day(monitor, clock, rng, day)
        assert monitor.store.active_reference("cam")["id"] == old["id"]
    _new_model_day(monitor, clock, rng, 15)
    new = monitor.store.active_reference("cam")
    assert new["id"] != old["id"] and new["models"] == "m2" and new["first_day"] == START + 9
    assert new["status"] == "provisional" and monitor.status("cam")["rebaseline"] is None
    rebuilt = audit.records()[-1]
    assert rebuilt["event"] == "drift_reference_rebuilt" and rebuilt["reference"] == new["id"]
    assert audit.verify() == []
