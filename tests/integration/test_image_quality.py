"""Quality on the real evaluation sets: mask recall, the number the privacy promise rests on.

Everything here runs the shipped defaults: ``Params()`` and the default engine, every class at once, each set
scored on the class its ground truth labels. CI runs a fixed subset of each set (every n-th image by id, the
``every`` column below, about 12 minutes in all on the 2-core CI machine); ``tools/eval_sets.py`` runs the
whole sets and prints the figures docs/evaluation.md quotes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.detect.engine import Engine
from pipeline.eval.images import AP_FLOOR, evaluate
from pipeline.media.image import load_image
from pipeline.params import Params

from tests.conftest import eval_set, thinned

# set, class its ground truth labels, every n-th image (CI), minimum mask recall, maximum share of image area
# masked outside the ground truth (plate sets: unlabelled faces and background plates are masked too)
CASES = [
    ("dlib_faces_voc", "face", 1, 0.98, 0.30),
    ("cmu_mit_faces", "face", 4, 0.98, 0.15),
    ("rbnr_faces", "face", 4, 0.98, 0.10),
    ("ucsd_lp", "license_plate", 6, 0.98, 0.08),
    ("openalpr_endtoend", "license_plate", 12, 0.98, 0.08),
    ("ccpd_sample", "license_plate", 2, 0.98, 0.08),
]
# The review router's goal is at most 5% of a whole set (0-4.5% per set, docs/evaluation.md). On a subset of 20-33
# photos one photo is 3-5%, and a set routed at exactly 5% would send 2 of 25 in a third of draws: twice that here.
SUBSET_REVIEW_RATE = 0.10


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("name, label, every, min_recall, max_outside", CASES, ids=[c[0] for c in CASES])
def test_mask_recall_on_the_development_sets(tmp_path, engine, name, label, every, min_recall, max_outside):
    folder = eval_set(name)
    gt = thinned(folder / "annotations.json", every, tmp_path / "gt.json")
    params = Params()
    assert set(params.detector.classes) == {"face", "license_plate"}  # the shipped path, both classes

    report = evaluate(gt, folder / "images", params, engine)
    (result,) = [c for c in report.classes if c.object_class == label]  # the class the set labels
    leaks = [f"{leak['image']} {leak['bbox']} covered {leak['coverage']:.0%}" for leak in report.leaked_boxes]
    assert result.ground_truth > 0
    assert result.mask_recall >= min_recall, "\n".join(leaks)
    assert report.masked_outside_gt_share <= max_outside
    # the operating point is reported and consistent with the curve
    assert 0.0 < result.recall_at_floor <= 1.0 and result.recall_at_floor >= result.recall_at_threshold
    assert 0.0 < result.ap50 <= 1.0
    # The review router at the shipped policy: few ordinary photos go to a person.
    review = report.review
    assert review.policy == "leak-risk" and review.review_rate <= SUBSET_REVIEW_RATE, review
    assert review.review_rate_strict >= review.review_rate
    assert review.leaking == len({leak["image"] for leak in report.leaked_boxes})


@pytest.mark.shared
def test_evaluation_masks_exactly_what_the_shipped_path_masks(engine):
    """``evaluate`` gathers candidates down to AP_FLOOR for the PR curve; the masks it scores must be planned
    from what ``Engine.detect`` at the production floors finds, box for box, on both classes."""
    folder = eval_set("openalpr_endtoend")
    gt = json.loads((folder / "annotations.json").read_text())
    # car photos where the face pass also reports candidates: both classes are present in the result
    checked = 0
    for info in sorted(gt["images"], key=lambda image: image["id"])[:3]:
        rgb = load_image(folder / "images" / info["file_name"], Params().output.max_pixels).rgb
        shipped = engine.detect(rgb)
        candidates = engine.candidates(rgb, min_score=AP_FLOOR)
        evaluated = engine.merged(engine.at_review_floors(candidates))
        assert len(engine.merged(candidates)) >= len(shipped)
        for found in (shipped, evaluated):
            order = np.lexsort((found.scores, found.classes))
            found_sorted = (found.boxes[order], found.scores[order], found.classes[order])
            if found is shipped:
                expected = found_sorted
            else:
                for a, b in zip(expected, found_sorted):
                    np.testing.assert_allclose(a, b, atol=1e-4)
        checked += int(len({int(c) for c in shipped.classes}) == 2)
    assert checked >= 1, "no photo had candidates of both classes"


def test_the_quality_fixture_is_the_shipped_engine(engine: Engine):
    assert {r.task for r in engine.model_records} == {"face", "license_plate"}
