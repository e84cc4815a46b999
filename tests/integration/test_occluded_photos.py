"""Faces partly hidden, at the SHIPPED defaults (``Params()``, the default engine, every class): behind a medical
face mask, behind sunglasses, cut in half by the photo's edge (pipeline/eval/occluded.py). The face model
learnt whole faces; a face it finds by its eyes alone must still be masked whole.

Photos: fixed subsets (every n-th by id, ``CASES``) of cmu_mit_faces (grey scans, up to 57 faces a photo) and
rbnr_faces (colour race photos). Two independent checks: ``evaluate`` on the evaluation's own masks, and the
pixels of the files that ``process_file`` published, judged without the sidecar. Larger subsets' figures are
in docs/evaluation.md#covered-and-cut-faces-washed-out-grainy-and-orange-photos.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.params import Params

from tests.conftest import degraded_set, mask_recall
from tests.published_pixels import assert_masked_when_published

MATCH_IOU = {"cmu_mit_faces": 0.3, "rbnr_faces": 0.5}  # cmu_mit_faces' boxes come from landmarks (its README)
# (set, occlusion): every n-th photo by id, and the mask recall it keeps at least. The subsets' figures
# (6 December): cmu_mit_faces behind face masks 95.45%, 84 of 88 (100% as they are; two playing-card faces are
# not found, two are covered 80% and 55%); rbnr_faces 100% for each. rbnr_faces runs every 12th photo (11, about
# 7 s each) to keep the suite's time: every 4th gives 100% too.
CASES = {("cmu_mit_faces", "face_mask"): (4, 0.93), ("rbnr_faces", "face_mask"): (12, 0.98),
         ("rbnr_faces", "sunglasses"): (12, 0.98), ("rbnr_faces", "cut_left"): (12, 0.98)}


@pytest.fixture(scope="module")
def occluded(tmp_path_factory) -> Callable[[str, str], Path]:
    """The subset of ``CASES`` for (set, occlusion), built once for this module's tests."""

    @functools.cache
    def build(name: str, kind: str) -> Path:
        return degraded_set(tmp_path_factory, name, kind, CASES[name, kind][0])

    return build


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind"), sorted(CASES))
def test_hidden_faces_are_masked_at_the_shipped_defaults(name, kind, engine, occluded):
    every, min_recall = CASES[name, kind]
    recall = mask_recall(occluded(name, kind), Params(), engine, MATCH_IOU[name])
    print(f"{name} every {every}th photo, {kind}: face mask recall {recall}")
    assert recall >= min_recall


@pytest.mark.shared
@pytest.mark.slow
def test_published_photos_of_faces_behind_masks_are_masked_inside_the_faces(occluded, engine, tmp_path):
    """The subset's photos with the most faces, through ``process_file`` with ``Params()``."""
    assert_masked_when_published(occluded("cmu_mit_faces", "face_mask"), engine, tmp_path, min_boxes=20,
                                 min_recall=CASES["cmu_mit_faces", "face_mask"][1])
