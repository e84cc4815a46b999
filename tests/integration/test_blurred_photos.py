"""Out-of-focus photos at the SHIPPED defaults (``Params()``, the default engine, every class): a blurred picture
is sharpened before the plate detector sees it (``detector.sharpen_blurred``), and its plates are masked.

ucsd_lp's every 3rd photo by id, each out of focus (pipeline/eval/degraded.py, "blur": a Gaussian a
three-hundredth of the long side wide). Two independent checks: ``evaluate`` on the evaluation's own masks, and
the pixels of files that ``process_file`` published, judged without the sidecar. Without the sharpening, two
large plates go unseen (int8 and float32 alike, docs/evaluation.md#out-of-focus-plates-sharpened).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.detect.engine import Engine
from pipeline.detect.focus import is_blurred
from pipeline.params import Params

from tests.conftest import degraded_set, mask_recall
from tests.published_pixels import assert_masked_when_published, decoded

EVERY = 3
MIN_PLATE_RECALL = 0.98
PUBLISHED_PHOTOS = 12  # ucsd_lp holds a plate or two a photo


@pytest.fixture(scope="module")
def blurred_plates(tmp_path_factory) -> Path:
    return degraded_set(tmp_path_factory, "ucsd_lp", "blur", EVERY)


@pytest.mark.shared
@pytest.mark.slow
def test_plates_on_blurred_photos_are_masked_at_the_shipped_defaults_and_leak_unsharpened(blurred_plates, engine):
    photos = sorted((blurred_plates.parent / "images").iterdir())
    assert sum(is_blurred(decoded(photo)) for photo in photos) >= 0.95 * len(photos)
    assert Params().detector.sharpen_blurred
    shipped = mask_recall(blurred_plates, Params(), engine, 0.5, "license_plate")
    # The plate detector alone, not sharpened (a study of one part).
    plates = Params.model_validate({"detector": {"classes": ["license_plate"], "sharpen_blurred": False}})
    unsharpened = mask_recall(blurred_plates, plates, Engine.load(plates.detector), 0.5, "license_plate")
    print(f"blurred ucsd_lp subset: plate mask recall {shipped} (not sharpened: {unsharpened})")
    assert shipped >= MIN_PLATE_RECALL
    assert unsharpened < shipped


@pytest.mark.shared
@pytest.mark.slow
def test_published_blurred_photos_are_masked_inside_the_plates(blurred_plates, engine, tmp_path):
    """The plates of the subset's photos, judged on the pixels ``process_file`` published with ``Params()``."""
    assert_masked_when_published(blurred_plates, engine, tmp_path, min_boxes=PUBLISHED_PHOTOS,
                                 min_recall=MIN_PLATE_RECALL, photos=PUBLISHED_PHOTOS, category=2)
