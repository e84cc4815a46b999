"""The monthly report from a simulated month (real control images), rendered by headless Chromium.

The screenshot part skips when no Chromium is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daemon.audit.log import AuditLog
from daemon.drift.control import recall_table
from daemon.drift.report import write
from daemon.drift.simulate import DAY, EPOCH_DAY, SENSITIVITY, SHIFTS, Scenario, simulate

from tests.integration.drift_control import EVAL, _engine_and_params, control_records, require_eval
from tests.integration.test_drift_simulation import COST, assert_recall_measured, sensitivity_rows

pytestmark = [pytest.mark.shared, pytest.mark.slow]
MONTH = "2026-01"  # the simulation's calendar starts on 2026-01-01


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _eval_report(tmp_path: Path) -> dict:
    """A real `veil eval` on three annotated plate images (the report shows the latest eval results)."""
    from pipeline.eval.images import evaluate

    coco = json.loads((EVAL / "ccpd_sample" / "annotations.json").read_text())
    keep = {i["id"] for i in coco["images"][:3]}
    subset = dict(coco, images=coco["images"][:3], annotations=[a for a in coco["annotations"] if a["image_id"] in keep])
    gt = tmp_path / "ccpd_sample" / "annotations.json"
    gt.parent.mkdir()
    gt.write_text(json.dumps(subset))
    engine, params = _engine_and_params()
    return json.loads(evaluate(gt, EVAL / "ccpd_sample" / "images", params, engine).model_dump_json())


@pytest.fixture(scope="module")
def month(request, tmp_path_factory):
    require_eval()
    records, params = control_records(getattr(request.config, "cache", None))
    scenarios = [Scenario("entrance"), Scenario("car-park", "scores_lowered", SHIFTS["scores_lowered"], 16),
                 Scenario("loading-bay", "jpeg_q20", SHIFTS["jpeg_q20"], 20)]
    scenarios += [Scenario(f"sensitivity-{n}", n, mix, 16) for n, mix in SENSITIVITY.items()]
    root = tmp_path_factory.mktemp("drift-report")
    results, monitor = simulate(records, params, scenarios, days=31, store_path=root / "drift.sqlite")
    monitor.audit = AuditLog(root / "audit.jsonl")
    clock = monitor.clock
    clock.now = (EPOCH_DAY + 8) * DAY
    monitor.approve("entrance", "alice")
    clock.now = (EPOCH_DAY + 25) * DAY
    monitor.acknowledge("car-park", "bob")
    rows = sensitivity_rows(records, {r.source: r for r in results})
    paths = write(monitor, MONTH, root / "out", audit=monitor.audit, actor="test", eval_reports=[_eval_report(root)],
                  sensitivity=rows, models=[m.model_dump() for m in _engine_and_params()[0].model_records])
    yield paths, monitor
    monitor.store.close()


def test_report_holds_scope_states_acknowledgements_eval_and_sensitivity(month):
    paths, monitor = month
    data = json.loads(paths["json"].read_text())
    assert data["month"] == MONTH and data["scope"]["files"] > 0
    assert data["method"] and data["thresholds"]["window_min_files"] == 300 and data["models"]
    sources = {s["source"]: s for s in data["sources"]}
    for s in sources.values():
        assert sum(s["days_in_state"].values()) == pytest.approx(31, abs=0.02)
    assert sources["entrance"]["days_in_state"]["ok"] == pytest.approx(31, abs=0.02)
    assert sources["entrance"]["reference"]["approved_by"] == "alice"
    car_park = sources["car-park"]
    assert car_park["days_in_state"]["alert"] > 0
    assert [a["by"] for a in car_park["acknowledgements"]] == ["bob"]
    assert any(c["key"] == "jpeg_quality" for c in sources["loading-bay"]["format_changes"])
    [plates] = data["eval"][0]["classes"]
    assert plates["object_class"] == "license_plate"
    assert plates["recall_at_threshold"] >= 2 / 3 and plates["mask_recall"] >= 2 / 3, plates  # 3 labelled plates
    assert {r["perturbation"] for r in data["sensitivity"]} == set(SENSITIVITY)
    for row in data["sensitivity"]:  # plate recall (and face recall) reported as figures under every perturbation
        assert COST.fullmatch(row["plate"]) and COST.fullmatch(row["face"]), row


def test_report_recall_is_measured_for_faces_and_plates(request):
    records, _ = control_records(getattr(request.config, "cache", None))
    assert_recall_measured(recall_table(records))


def test_report_is_self_contained_and_its_hash_is_recorded(month):
    paths, monitor = month
    page = paths["html"].read_text()
    assert "<img" in page and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch: an auditor may open it offline
    digest = hashlib.sha256(paths["html"].read_bytes()).hexdigest()
    assert digest == paths["sha256_html"]
    assert f"{digest}  {paths['html'].name}" in paths["html"].with_suffix(".sha256").read_text()
    recorded = [r for r in monitor.audit.records() if r["event"] == "drift_report"]
    assert recorded and recorded[-1]["sha256"][paths["html"].name] == digest
    assert monitor.audit.verify() == []
    assert sorted(p.name for p in paths["html"].parent.glob("*.png"))  # the plots, beside the report


def test_report_renders_in_headless_chromium(month, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (Debian package: chromium)")
    paths, _ = month
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1280,2200", paths["html"].as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2200, 1280)
    assert pixels.std() > 20  # text, tables and plots drawn, not a blank page
    assert (pixels < 128).mean() > 0.01
