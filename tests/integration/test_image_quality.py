"""Quality on the real evaluation sets: mask recall, the number the privacy promise rests on.

These run the full pipeline (default parameters, real models) over the development sets and check the
figures README quotes. They skip when ../shared is absent. openalpr_endtoend is the costliest set (2x plate
tiles on every photo): CI runs every second image of it, with a bound one leak looser; set
VEIL_FULL_EVAL=1 to run it whole against the README's bound.
"""

from __future__ import annotations

import json
import os

import pytest

from pipeline.engine import Engine
from pipeline.evaluate import evaluate
from pipeline.params import DetectorParams, Params
from tests.conftest import eval_set

FULL = os.environ.get("VEIL_FULL_EVAL") == "1"

# set, class, every n-th image (CI), minimum mask recall, maximum share of image area masked outside GT
CASES = [
    ("dlib_faces_voc", "face", 1, 0.98, 0.30),
    ("cmu_mit_faces", "face", 1, 0.98, 0.15),
    ("rbnr_faces", "face", 1, 0.98, 0.08),
    ("ucsd_lp", "license_plate", 1, 0.98, 0.05),
    ("openalpr_endtoend", "license_plate", 1 if FULL else 2, 0.98 if FULL else 0.97, 0.05),
]


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("name, label, every, min_recall, max_outside", CASES, ids=[c[0] for c in CASES])
def test_mask_recall_on_the_development_sets(tmp_path, name, label, every, min_recall, max_outside):
    folder = eval_set(name)
    gt = json.loads((folder / "annotations.json").read_text())
    images = sorted(gt["images"], key=lambda image: image["id"])[::every]
    kept = {image["id"] for image in images}
    gt.update(images=images, annotations=[a for a in gt["annotations"] if a["image_id"] in kept])
    (tmp_path / "gt.json").write_text(json.dumps(gt))

    params = Params(detector=DetectorParams(classes=(label,)))
    report = evaluate(tmp_path / "gt.json", folder / "images", params, Engine.load(params.detector))
    (result,) = report.classes
    leaks = [f"{leak['image']} {leak['bbox']} covered {leak['coverage']:.0%}" for leak in report.leaked_boxes]
    assert result.mask_recall >= min_recall, "\n".join(leaks)
    assert report.masked_outside_gt_share <= max_outside
    # the operating point is reported and consistent with the curve
    assert 0.0 < result.recall_at_floor <= 1.0 and result.recall_at_floor >= result.recall_at_threshold
    assert 0.0 < result.ap50 <= 1.0
