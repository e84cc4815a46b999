"""The plate cross-check's plumbing: which finds count as unmasked, the switch, the setting's bounds.

Its quality (a real plate the plate model misses, routed to review; a found plate left alone) is tested on
real photos in tests/integration/test_plate_cross_check.py."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from pipeline.detect import cascade
from pipeline.detect.cascade import cross_check_plates
from pipeline.mask import NO_MASK, unmasked
from pipeline.params import Params, ReviewParams


def covered_map(*boxes: tuple[int, int, int, int]) -> np.ndarray:
    covered = np.zeros((100, 200), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        covered[y1:y2, x1:x2] = True
    return covered


FIND = np.array([[20, 20, 120, 60]], dtype=np.float32)  # 100 x 40 = 4000 px


@pytest.mark.parametrize(("masks", "kept"), [
    ((), 1),                                    # nothing masked: an unmasked find
    (((20, 20, 120, 60),), 0),                  # masked whole
    (((60, 30, 100, 50),), 0),                  # a masked plate inside a wider find (800 px, 20%): touched
    (((20, 20, 34, 30),), 1),                   # 140 px (3.5%): a mask's corner only, still unmasked
    (((0, 0, 20, 100),), 1),                    # a mask beside it
], ids=["none", "whole", "plate-inside", "corner", "beside"])
def test_a_find_counts_as_unmasked_only_when_the_masks_barely_touch_it(masks, kept):
    assert len(unmasked(FIND, covered_map(*masks))) == kept


def test_the_unmasked_rule_is_the_documented_share():
    share_just_under = covered_map((20, 20, 20 + int(100 * NO_MASK) - 1, 60))
    share_at = covered_map((20, 20, 20 + int(100 * NO_MASK), 60))
    assert len(unmasked(FIND, share_just_under)) == 1 and len(unmasked(FIND, share_at)) == 0


def test_no_finds_and_finds_outside_the_image():
    assert unmasked(np.zeros((0, 4), np.float32), covered_map()).shape == (0, 4)
    outside = np.array([[300, 300, 400, 350]], dtype=np.float32)
    assert len(unmasked(outside, covered_map())) == 0  # no pixel of the image: nothing to show a person


@pytest.mark.parametrize("profile", [
    {"review": {"plate_cross_check": False}},
    {"detector": {"classes": ["face"]}},  # plates are not searched, so none is masked: nothing to cross-check
], ids=["switched-off", "faces-only"])
def test_the_cascade_is_not_run_where_the_profile_does_not_want_it(monkeypatch, profile):
    def fail(*args):
        raise AssertionError("the cascade ran")

    monkeypatch.setattr(cascade, "plate_cascade_finds", fail)
    rgb = np.zeros((64, 64, 3), np.uint8)
    assert cross_check_plates(rgb, Params.model_validate(profile)).shape == (0, 4)


def test_the_shipped_profile_runs_the_cascade(monkeypatch):
    monkeypatch.setattr(cascade, "plate_cascade_finds", lambda rgb, neighbours: np.array([[1, 2, 3, 4]], np.float32))
    assert cross_check_plates(np.zeros((64, 64, 3), np.uint8), Params()).tolist() == [[1, 2, 3, 4]]


def test_finds_come_back_in_the_photos_own_pixels(monkeypatch):
    """The cascade runs on the photo scaled to WORKING_SIDE; its boxes are scaled back."""
    seen = {}

    class Cascade:
        def __init__(self, path):
            pass

        def empty(self):
            return False

        def detectMultiScale(self, gray, **options):
            seen["shape"], seen["neighbours"] = gray.shape, options["minNeighbors"]
            return np.array([[100, 50, 60, 20]])

    monkeypatch.setattr(cascade.cv2, "CascadeClassifier", Cascade)
    finds = cascade.plate_cascade_finds(np.zeros((1280, 2560, 3), np.uint8), 7)
    assert seen == {"shape": (640, 1280), "neighbours": 7}
    np.testing.assert_allclose(finds, [[200, 100, 320, 140]])


def test_the_shipped_profile_cross_checks_and_the_setting_is_bounded():
    assert Params().review.plate_cross_check and Params().review.plate_cross_check_neighbors == 10
    with pytest.raises(pydantic.ValidationError):
        ReviewParams(plate_cross_check_neighbors=0)
