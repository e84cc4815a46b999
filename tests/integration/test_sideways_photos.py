"""Photos saved on their side with no EXIF orientation, at the SHIPPED defaults (``Params()``, the default engine,
every class): the face plan's quarter-turn views (``rotate_90``) find the faces that the upright views miss.

The set is cmu_mit_faces' CI subset (every 4th photo by id, as in test_image_quality), each photo turned a quarter
turn, left and right alternately, with its boxes turned too (pipeline/eval/sideways.py). Its group photos hold
many small faces. Without the quarter turns, the upright views mask 45% of the whole set's faces once it is
turned (docs/evaluation.md#sideways-photos). Two independent checks: ``evaluate`` on the evaluation's own masks,
and the pixels of files that ``process_file`` published, judged without the sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.detect.engine import Engine
from pipeline.eval.sideways import build_sideways_set, turned_bbox
from pipeline.params import Params
from pipeline.records import ObjectClass

from tests.conftest import eval_set, mask_recall, require_models
from tests.published_pixels import assert_masked_when_published

EVERY = 4
MIN_RECALL = 0.98
MATCH_IOU = 0.3  # cmu_mit_faces' boxes come from landmarks, larger than a detector's (its README)


@pytest.fixture(scope="module")
def sideways(tmp_path_factory) -> Path:
    """The turned subset's annotations.json (images/ beside it)."""
    source = eval_set("cmu_mit_faces")
    require_models()
    return build_sideways_set(source, tmp_path_factory.mktemp("sideways"), EVERY)


def test_a_turned_box_lands_on_the_turned_pixels():
    photo = np.zeros((40, 60), np.uint8)
    photo[5:15, 30:50] = 255  # a box at x 30, y 5, 20 wide, 10 tall
    for turns in (1, 3):
        x, y, w, h = turned_bbox([30, 5, 20, 10], turns, width=60, height=40)
        turned = np.rot90(photo, turns)
        assert turned[int(y) : int(y + h), int(x) : int(x + w)].min() == 255 and turned.sum() == photo.sum()
        assert (w, h) == (10, 20)


@pytest.mark.shared
@pytest.mark.slow
def test_faces_on_sideways_photos_are_masked_at_the_shipped_defaults(sideways, engine):
    assert Params().detector.for_class(ObjectClass.FACE).scales.rotate_90
    recall = mask_recall(sideways, Params(), engine, MATCH_IOU)
    print(f"sideways cmu_mit_faces subset: face mask recall {recall}")
    assert recall >= MIN_RECALL


@pytest.mark.shared
@pytest.mark.slow
def test_without_the_quarter_turns_the_same_photos_leak(sideways):
    """What the views buy, and proof that the recall above can fail: the upright views alone (faces only, to
    keep it short) leave many of the same faces unmasked."""
    upright_only = Params.model_validate({"detector": {"classes": ["face"],
                                                       "per_class": {"face": {"scales": {"rotate_90": False}}}}})
    recall = mask_recall(sideways, upright_only, Engine.load(upright_only.detector), MATCH_IOU)
    print(f"sideways cmu_mit_faces subset, upright views only: face mask recall {recall}")
    assert recall < 0.8


@pytest.mark.shared
@pytest.mark.slow
def test_published_sideways_photos_are_masked_inside_the_faces(sideways, engine, tmp_path):
    """The subset's photos with the most faces, through ``process_file`` with ``Params()``."""
    assert {image["turns"] for image in json.loads(sideways.read_text())["images"]} == {1, 3}
    assert_masked_when_published(sideways, engine, tmp_path, min_boxes=20, min_recall=MIN_RECALL)
