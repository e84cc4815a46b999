"""Weeks of traffic built from real control images, through the real store and monitor, on an injected clock.

- No drift: no alert in at least 1,000 checked source-days.
- Each injected shift (night/IR share doubled, JPEG quality 20, a new resolution, detector scores lowered)
  is caught within 3 days, and the signal that caught it is named.
The control records (features and detections) come from the real models on real images: see drift_control.py.
"""

from __future__ import annotations

import json
import re

import pytest

from daemon.drift.control import recall_table
from daemon.drift.simulate import SENSITIVITY, SHIFTS, Scenario, simulate

from tests.integration.drift_control import control_records, require_eval

pytestmark = [pytest.mark.shared, pytest.mark.slow]

QUIET_SOURCES = 24
DAYS = 50
SHIFT_DAY = 16
EXPECTED_SIGNAL = {  # the kind of signal each shift must raise, at the least
    "night_ir_doubled": "input_warning:night_ir",
    "jpeg_q20": "format_change:jpeg_quality=20",
    "new_resolution": "format_change:resolution=",
    "scores_lowered": "detector_alert:",
}


@pytest.fixture(scope="module")
def simulation(request, tmp_path_factory):
    require_eval()
    records, params = control_records(getattr(request.config, "cache", None))
    scenarios = [Scenario(f"quiet-{i:02d}") for i in range(QUIET_SOURCES)]
    scenarios += [Scenario(f"shift-{name}", name, mix, SHIFT_DAY) for name, mix in SHIFTS.items()]
    scenarios += [Scenario(f"sensitivity-{name}", name, mix, SHIFT_DAY) for name, mix in SENSITIVITY.items()]
    results, monitor = simulate(records, params, scenarios, days=DAYS,
                                store_path=tmp_path_factory.mktemp("drift") / "drift.sqlite")
    by_source = {r.source: r for r in results}
    yield records, by_source, monitor
    monitor.store.close()


def test_no_alert_in_a_thousand_source_days_without_drift(simulation):
    _, results, _ = simulation
    quiet = [r for name, r in results.items() if name.startswith("quiet-")]
    checked = sum(r.checked_days for r in quiet)
    print(f"\nno drift: {checked} checked source-days, {sum(r.alerts for r in quiet)} alerts, "
          f"{sum(r.warnings for r in quiet)} warnings, {sum(r.format_events for r in quiet)} format events")
    assert checked >= 1000
    assert sum(r.alerts for r in quiet) == 0
    # warnings (image statistics) are allowed by the issue, but must stay rare: at most 1 % of source-days
    assert sum(r.warnings for r in quiet) <= 0.01 * checked
    assert sum(r.format_events for r in quiet) == 0


@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_each_shift_is_caught_within_three_days_and_named(simulation, shift):
    _, results, _ = simulation
    result = results[f"shift-{shift}"]
    print(f"\n{shift}: caught on day {result.caught_on_day} of the shift ({result.caught_after_days} days after its "
          f"start) by {result.caught_by}")
    assert result.caught_on_day is not None and result.caught_on_day <= 3
    assert any(signal.startswith(EXPECTED_SIGNAL[shift]) for signal in result.caught_by), result.caught_by
    # nothing was raised on that source before the shift began
    assert result.checked_days >= DAYS - SHIFT_DAY


def test_sensitivity_table_names_recall_cost_and_signal(simulation, tmp_path):
    records, results, _ = simulation
    recall = recall_table(records)
    rows = sensitivity_rows(records, results)
    print("\n" + json.dumps(rows, indent=1))
    assert [r["perturbation"] for r in rows] == sorted(SENSITIVITY)
    assert_recall_measured(recall)
    for row in rows:  # both classes measured under every perturbation: a figure, never "n/a"
        assert COST.fullmatch(row["face"]) and COST.fullmatch(row["plate"]), row
    # darkening to 30 % costs face recall on the control set, and the monitor notices it
    assert recall["darken"]["face"] <= recall["none"]["face"]
    darken = next(r for r in rows if r["perturbation"] == "darken")
    assert darken["caught_on_day"] is not None and darken["caught_on_day"] <= 3


COST = re.compile(r"\d{1,3}% -> \d{1,3}% \([+-]\d{1,3} pt\)")
# Recall of confident detections on the unperturbed control set (3 images from each of the 4 sets: 29 faces,
# 6 plates; shipped defaults). Measured 2026-12-02: 1.0 for both classes, under every perturbation too.
# The floors leave room for two missed faces and one missed plate, no more.
FACE_RECALL_FLOOR = 0.9
PLATE_RECALL_FLOOR = 5 / 6


def assert_recall_measured(recall: dict) -> None:
    """Every perturbation scored for both classes (the control set holds both), within [0, 1]; the clean
    control set's recall above each class's floor."""
    assert set(recall) >= {"none", *SENSITIVITY}
    for name, by_class in recall.items():
        for label in ("face", "license_plate"):
            value = by_class[label]
            assert value is not None and 0.0 <= value <= 1.0, (name, label, by_class)
    assert recall["none"]["face"] >= FACE_RECALL_FLOOR, recall["none"]
    assert recall["none"]["license_plate"] >= PLATE_RECALL_FLOOR, recall["none"]
    for name, by_class in recall.items():  # a perturbation may cost recall, but never half of either class
        assert by_class["face"] >= 0.5 and by_class["license_plate"] >= 0.5, (name, by_class)


def sensitivity_rows(records, results) -> list[dict]:
    recall = recall_table(records)

    def cost(name: str, label: str) -> str:
        base, after = recall["none"][label], recall[name][label]
        if base is None or after is None:
            return "n/a"
        return f"{100 * base:.0f}% -> {100 * after:.0f}% ({100 * (after - base):+.0f} pt)"

    rows = []
    for name in sorted(SENSITIVITY):
        result = results[f"sensitivity-{name}"]
        rows.append({"perturbation": name, "face": cost(name, "face"), "plate": cost(name, "license_plate"),
                     "caught_after_days": result.caught_after_days, "caught_on_day": result.caught_on_day,
                     "caught_by": result.caught_by})
    return rows
