"""The plate cross-check on real photos at the shipped defaults: ``Params()``, both classes, the real models.

openalpr_endtoend's ``eu/eu8.jpg`` holds a black Czech plate 300 px wide that the plate model misses at every
scale tried; OpenCV's plate cascade finds it. Failing closed means the photo is either published with that
plate masked, or held in review with the cross-check's box over it: never published as done with it readable.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.detect.cascade import plate_cascade_finds
from pipeline.detect.nms import iou_matrix
from pipeline.edits import Edits, Suppression, box_polygon
from pipeline.media.image import load_image
from pipeline.params import Params
from pipeline.run import process_file

from tests.conftest import eval_set
from tests.integration.pixel_check import MASKED_SHARE, changed, pixels
from tests.integration.review_items import put_in_review, settings_for
from tests.unit.review_station import AUTH, Station

MISSED = "eu/eu8.jpg"  # the plate model misses its plate
FOUND = "br/JST2699.jpg"  # the plate model masks its plate; the cascade finds a wider region around it


def plate_box(name: str) -> np.ndarray:
    """The labelled plate of a photo of openalpr_endtoend, as (1, 4) x1, y1, x2, y2."""
    gt = json.loads((eval_set("openalpr_endtoend") / "annotations.json").read_text())
    (image_id,) = [info["id"] for info in gt["images"] if info["file_name"] == name]
    ((x, y, w, h),) = [a["bbox"] for a in gt["annotations"] if a["image_id"] == image_id]
    return np.array([[x, y, x + w, y + h]], dtype=np.float32)


def plate_masked_share(photo, published, box: np.ndarray) -> float:
    """The share of the labelled plate's pixels the published file changed: the pixels, not the sidecar."""
    x1, y1, x2, y2 = box[0].astype(int)
    return float(changed(pixels(photo), pixels(published))[y1:y2, x1:x2].mean())


@pytest.mark.shared
def test_the_cascade_finds_the_plate_the_plate_model_misses():
    photo = eval_set("openalpr_endtoend") / "images" / MISSED
    finds = plate_cascade_finds(load_image(photo, Params().output.max_pixels).rgb, Params().review.plate_cross_check_neighbors)
    assert len(finds) and iou_matrix(finds, plate_box(MISSED)).max() > 0.5, finds


@pytest.mark.shared
def test_a_plate_left_unmasked_sends_the_photo_to_review_with_its_box(tmp_path, engine):
    photo = eval_set("openalpr_endtoend") / "images" / MISSED
    report = process_file(photo, tmp_path / "eu8.jpg", Params(), engine, name="eu8.jpg")
    plate = plate_box(MISSED)
    masked = plate_masked_share(photo, tmp_path / "eu8.jpg", plate)
    if masked < MASKED_SHARE:  # today's plate model: the plate is readable in the output, so the photo must not be done
        assert report.disposition == "review", report.review_reasons
        assert any("second plate detector" in reason for reason in report.review_reasons)
        assert iou_matrix(np.array(report.plate_cross_check, np.float32).reshape(-1, 4), plate).max() > 0.5
    else:  # a plate model that masks it: nothing unmasked is left for the cross-check to report
        assert report.plate_cross_check == []
    assert masked < MASKED_SHARE, "the plate model now masks eu8's plate: the cross-check's capture needs a new witness"


@pytest.mark.shared
def test_a_find_around_a_masked_plate_leaves_the_photo_done(tmp_path, engine):
    photo = eval_set("openalpr_endtoend") / "images" / FOUND
    finds = plate_cascade_finds(load_image(photo, Params().output.max_pixels).rgb, Params().review.plate_cross_check_neighbors)
    assert len(finds), "the cascade should find the region around this plate"
    report = process_file(photo, tmp_path / "car.jpg", Params(), engine, name="car.jpg")
    assert plate_masked_share(photo, tmp_path / "car.jpg", plate_box(FOUND)) > MASKED_SHARE
    assert report.disposition == "done" and report.plate_cross_check == [], report.review_reasons


@pytest.mark.shared
def test_an_ignore_zone_silences_the_cross_check_there(tmp_path, engine):
    photo = eval_set("openalpr_endtoend") / "images" / MISSED
    height, width = load_image(photo, Params().output.max_pixels).rgb.shape[:2]
    x1, y1, x2, y2 = plate_box(MISSED)[0]
    zone = Edits(suppress=(Suppression(box_polygon(x1 / width, y1 / height, x2 / width, y2 / height), origin="ignore-zone:tv"),))
    report = process_file(photo, tmp_path / "eu8.jpg", Params(), engine, name="eu8.jpg", edits=zone)
    assert report.plate_cross_check == [] and report.disposition == "done", report.review_reasons


@pytest.mark.shared
def test_the_review_station_hands_the_page_the_cross_checks_regions(tmp_path, engine):
    photo = eval_set("openalpr_endtoend") / "images" / MISSED
    settings = settings_for(tmp_path)
    item = put_in_review(settings.folders[0], photo, engine)
    station = Station(settings)
    try:
        detail = json.loads(station.request("GET", f"/api/item?folder=cams&id={item}", headers=AUTH)[1])
    finally:
        station.stop()
    assert detail["reasons"] and "second plate detector" in detail["reasons"][0]
    regions = np.array(detail["plate_cross_check"], np.float32).reshape(-1, 4)
    assert iou_matrix(regions, plate_box(MISSED)).max() > 0.5  # the page draws it where the plate is
