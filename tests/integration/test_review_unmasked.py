"""A profile that leaves the review band unmasked (``mask_review_band = false``), with the real detector and a
real photo (issue 17, item 13): the station never shows those faces as they are, and approval publishes them
unmasked only on the reviewer's explicit decision, which the audit log records."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.params import Params
from pipeline.qc import QCReport

from daemon.audit.log import AuditLog
from daemon.review.rework import ReworkError, approve, parse_document

from tests.conftest import eval_set
from tests.integration.review_items import put_in_review, settings_for
from tests.integration.test_rework import pixels
from tests.unit.review_station import AUTH, Station

# Every face in the review band (threshold out of reach), and the band left unmasked: the documented key.
BAND_UNMASKED = Params.model_validate({
    "detector": {"classes": ["face"], "per_class": {"face": {"threshold": 0.999, "review_floor": 0.2}}},
    "mask": {"mask_review_band": False}, "video": {"face_scales": {"upscale_below": 0}}})
PHOTO = "2008_001322.jpg"


@pytest.fixture()
def reviewed(tmp_path, face_engine):
    photo = eval_set("dlib_faces_voc") / "images" / PHOTO
    settings = settings_for(tmp_path, BAND_UNMASKED)
    folder = settings.folders[0]
    item = put_in_review(folder, photo, face_engine, BAND_UNMASKED)
    report = QCReport.from_json((folder.review / (PHOTO + ".veil.json")).read_text())
    faces = [d.box for d in report.detections if d.band == "review" and not d.masked]
    assert faces, "the photo should have review-band faces left unmasked"
    return settings, folder, item, photo, faces


def core(box) -> tuple[slice, slice]:
    x1, y1, x2, y2 = box
    return slice(int(y1 + (y2 - y1) * 0.25), int(y2 - (y2 - y1) * 0.25)), slice(int(x1 + (x2 - x1) * 0.25), int(x2 - (x2 - x1) * 0.25))


def test_the_page_masks_what_the_profile_left_unmasked(reviewed):
    settings, folder, item, photo, faces = reviewed
    original = pixels(photo)
    assert np.abs(pixels(folder.review / PHOTO)[core(faces[0])] - original[core(faces[0])]).mean() < 4  # unmasked file
    station = Station(settings)
    try:
        response, data = station.request("GET", f"/api/image?folder=cams&id={item}", headers=AUTH)
        assert response.status == 200
        shown = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
        for box in faces:
            assert np.abs(shown[core(box)] - original[core(box)]).mean() > 8, box  # masked on the page
        detail = json.loads(station.request("GET", f"/api/item?folder=cams&id={item}", headers=AUTH)[1])
        assert detail["unmasked_review_band"] == len(faces) and "mask_review_band = false" in detail["unmasked_statement"]
    finally:
        station.stop()


def test_approval_without_a_decision_is_refused_and_the_item_stays(reviewed, face_engine, tmp_path):
    _, folder, item, _, _ = reviewed
    doc = parse_document(json.dumps({"id": item, "reviewer": "erin"}))
    with pytest.raises(ReworkError, match="unmasked_review_band"):
        approve(folder, BAND_UNMASKED, lambda p: face_engine, doc, audit=AuditLog(tmp_path / "a.jsonl"), source="test")
    assert (folder.review / PHOTO).exists() and not (folder.output / PHOTO).exists()


@pytest.mark.parametrize("decision", ["mask", "publish"])
def test_the_reviewers_decision_is_applied_and_audited(reviewed, face_engine, tmp_path, decision):
    _, folder, item, photo, faces = reviewed
    audit = AuditLog(tmp_path / "audit.jsonl")
    doc = parse_document(json.dumps({"id": item, "reviewer": "erin", "unmasked_review_band": decision}))
    done = approve(folder, BAND_UNMASKED, lambda p: face_engine, doc, audit=audit, source="test")
    original, published = pixels(photo), pixels(folder.output / PHOTO)
    differences = [np.abs(published[core(box)] - original[core(box)]).mean() for box in faces]
    if decision == "mask":
        assert min(differences) > 8 and done.unmasked_published == 0
    else:
        assert max(differences) < 8 and done.unmasked_published == len(faces)
    [event] = [r for r in audit.records() if r["event"] == "review.unmasked_review_band"]
    assert event["actor"] == "erin" and event["decision"] == decision and event["left_unmasked"] == done.unmasked_published
    approval = QCReport.from_json((folder.output / (PHOTO + ".veil.json")).read_text()).approval
    assert approval["unmasked_review_band"] == decision
