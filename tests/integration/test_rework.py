"""Rework with the real engine: a reviewer's regions are masked in the re-render, nothing else changes,
false positives unmask only where the profile allows it, and the trail is in the sidecar and the audit log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.media.video import VideoReader
from pipeline.params import Params
from pipeline.qc import QCReport

from daemon.audit.log import AuditLog
from daemon.review.rework import ReworkError, approve, parse_document
from daemon.review.rework_watch import ReworkQueue

from tests.conftest import eval_set
from tests.integration.review_items import put_in_review, settings_for, textured_clip, textured_image

# Faces only, and frames without the 2x pass: the edits are what is tested here, not the detector.
FACES = Params.model_validate({"detector": {"classes": ["face"]},
                               "video": {"face_scales": {"upscale_below": 0}}})


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def frames_of(path: Path) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return [f.rgb.astype(int) for f in reader.frames()]


def wait_for(predicate, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_rework_document_masks_its_box_and_changes_nothing_else(tmp_path, face_engine):
    settings = settings_for(tmp_path, FACES, keep_originals_after_review=False)
    folder = settings.folders[0]
    item = put_in_review(folder, textured_image(tmp_path / "yard.png"), face_engine, FACES)
    unedited = pixels(folder.review / "yard.png")
    folder.rework.mkdir(parents=True, exist_ok=True)
    (folder.rework / f"{item}.rework.json").write_text(json.dumps(
        {"schema": "veil.rework/1", "id": item, "reviewer": "alice", "add": [{"box": [0.25, 0.25, 0.5, 0.5]}]}))

    rework = ReworkQueue(settings, engines=lambda params: face_engine)
    try:
        rework.tick(now=1e9)
        wait_for(lambda: (folder.rework / "done" / f"{item}.rework.json").exists()
                 or (folder.rework / "failed").exists())
    finally:
        rework.close()
    assert not (folder.rework / "failed").exists()

    edited = pixels(folder.output / "yard.png")
    inside = np.abs(edited - unedited)[60:120, 80:160]  # the box: x 80..160, y 60..120 of 320x240
    assert inside.mean() > 30  # blurred texture
    outside = np.abs(edited - unedited)
    outside[58:122, 78:162] = 0  # the box and a pixel around it (a polygon masks every pixel it touches)
    assert outside.max() == 0

    report = QCReport.from_json((folder.output / "yard.png.veil.json").read_text())
    assert report.disposition == "done" and report.approval["reviewer"] == "alice"
    assert report.approval["was"] == "review" and report.approval["source"] == "rework-folder"
    assert [e["kind"] for e in report.edits] == ["add"] and report.edits[0]["origin"] == "manual"
    assert not (folder.review / "yard.png").exists() and not (folder.review / "yard.png.veil.json").exists()
    assert not (folder.originals / "yard.png").exists()  # keep_originals_after_review = false
    events = [r["event"] for r in AuditLog(tmp_path / "state" / "audit.jsonl").records()]
    assert events == ["review.manual_edit", "review.approve"]
    assert AuditLog(tmp_path / "state" / "audit.jsonl").verify() == []


def test_a_region_over_a_frame_range_masks_those_frames_only(tmp_path, face_engine):
    settings = settings_for(tmp_path)
    folder = settings.folders[0]
    item = put_in_review(folder, textured_clip(tmp_path / "clip.mp4"), face_engine, FACES)
    unedited = frames_of(folder.review / "clip.mp4")
    doc = parse_document(json.dumps({"id": item, "reviewer": "bob",
                                     "add": [{"box": [0.5, 0.0, 1.0, 0.5], "frames": [3, 6]}]}))
    done = approve(folder, FACES, lambda params: face_engine, doc, audit=None, source="test")
    edited = frames_of(folder.output / done.name)
    assert len(edited) == len(unedited) == 12
    for index, (before, after) in enumerate(zip(unedited, edited)):
        region = np.abs(after - before)[4:44, 68:124].mean()  # inside the box (128x96: x 64..128, y 0..48)
        rest = np.abs(after - before)[56:, :60].mean()  # far from it
        if 3 <= index <= 6:
            assert region > 20, index
        else:
            assert region < 3, index  # the same pixels, give or take the encoder
        assert rest < 3, index
    assert (folder.originals / "clip.mp4").exists()  # keep_originals_after_review defaults to true
    report = QCReport.from_json((folder.output / "clip.mp4.veil.json").read_text())
    assert report.edits[0]["frames"] == [3, 6] and report.edits[0]["frames_masked"] == 4
    assert all((folder.output / name).is_file() for name in report.companions)


def test_an_item_whose_original_is_gone_stays_in_review(tmp_path, face_engine):
    folder = settings_for(tmp_path).folders[0]
    item = put_in_review(folder, textured_image(tmp_path / "gone.png"), face_engine, FACES)
    (folder.originals / "gone.png").unlink()
    doc = parse_document(json.dumps({"id": item, "add": [{"box": [0.1, 0.1, 0.2, 0.2]}]}))
    with pytest.raises(ReworkError, match="not kept"):
        approve(folder, FACES, lambda params: face_engine, doc, audit=None, source="test")
    assert (folder.review / "gone.png.veil.json").exists() and not (folder.output / "gone.png").exists()


@pytest.mark.parametrize("allowed", [False, True])
def test_a_false_positive_is_unmasked_only_where_the_profile_allows_and_audited_either_way(tmp_path, face_engine, allowed):
    photo = eval_set("dlib_faces_voc") / "images" / "2008_001322.jpg"
    folder = settings_for(tmp_path).folders[0]
    item = put_in_review(folder, photo, face_engine, FACES)
    report = QCReport.from_json((folder.review / (photo.name + ".veil.json")).read_text())
    face = max((d for d in report.detections if d.object_class == "face" and d.masked), key=lambda d: d.score)
    w, h = report.output.width, report.output.height
    x1, y1, x2, y2 = face.box
    params = FACES.model_copy(update={"review": FACES.review.model_copy(update={"allow_false_positive_unmask": allowed})})
    doc = parse_document(json.dumps({"id": item, "reviewer": "carol",
                                     "false_positives": [{"box": [x1 / w, y1 / h, x2 / w, y2 / h]}]}))
    audit = AuditLog(tmp_path / "audit.jsonl")
    approve(folder, params, lambda p: face_engine, doc, audit=audit, source="test")

    original = pixels(photo)
    published = pixels(folder.output / photo.name)
    core = (slice(int(y1 + (y2 - y1) * 0.3), int(y2 - (y2 - y1) * 0.3)), slice(int(x1 + (x2 - x1) * 0.3), int(x2 - (x2 - x1) * 0.3)))
    difference = np.abs(published[core] - original[core]).mean()
    if allowed:
        assert difference < 8  # the face's centre is back (JPEG re-encoding aside)
    else:
        assert difference > 8  # still masked
    marks = [r for r in audit.records() if r["event"] == "review.false_positive"]
    assert len(marks) == 1 and marks[0]["unmasked"] is allowed and marks[0]["false_positives"] == 1
    sidecar = QCReport.from_json((folder.output / (photo.name + ".veil.json")).read_text())
    assert sum(e["kind"] == "suppress" for e in sidecar.edits) == (1 if allowed else 0)


def test_another_inputs_result_under_the_same_name_is_never_replaced(tmp_path, face_engine):
    folder = settings_for(tmp_path).folders[0]
    other = put_in_review(folder, textured_image(tmp_path / "same.png", seed=4), face_engine, FACES, place="output")
    item = put_in_review(folder, textured_image(tmp_path / "same.png", seed=3), face_engine, FACES)
    assert other != item
    kept = (folder.output / "same.png").read_bytes()
    doc = parse_document(json.dumps({"id": item, "add": [{"box": [0.1, 0.1, 0.2, 0.2]}]}))
    done = approve(folder, FACES, lambda params: face_engine, doc, audit=None, source="test")
    assert done.name == f"same.{item[:8]}.png"
    assert (folder.output / "same.png").read_bytes() == kept
    report = QCReport.from_json((folder.output / f"same.{item[:8]}.png.veil.json").read_text())
    assert report.input.sha256 == item and report.output.name == done.name


def test_the_service_reworks_a_published_result_from_a_document_dropped_in_rework(tmp_path):
    """The real service: it publishes a photo, then a rework document for it is re-rendered in place."""
    from daemon.service.lifecycle import Service

    settings = settings_for(tmp_path, FACES)
    settings = settings.model_copy(update={"watch": settings.watch.model_copy(update={"mode": "poll", "poll_interval_s": 0.2})})
    folder = settings.folders[0]
    folder.ingest.mkdir(parents=True)
    textured_image(folder.ingest / "gate.png")
    service = Service(settings)
    service.start_internals()
    try:
        deadline = time.monotonic() + 120
        sidecar = folder.output / "gate.png.veil.json"
        while not sidecar.exists():
            assert time.monotonic() < deadline, "the photo was not published"
            service.step()
        first = pixels(folder.output / "gate.png")
        item = QCReport.from_json(sidecar.read_text()).input.sha256
        (folder.rework / f"{item}.rework.json").write_text(json.dumps({"id": item, "add": [{"box": [0.5, 0.5, 1.0, 1.0]}]}))
        while not (folder.rework / "done" / f"{item}.rework.json").exists():
            assert time.monotonic() < deadline and not (folder.rework / "failed").exists(), "the rework did not finish"
            service.step()
    finally:
        service.stop_internals(5)
    second = pixels(folder.output / "gate.png")
    assert np.abs(second - first)[130:230, 170:310].mean() > 30  # the lower right quarter, blurred now
    assert np.array_equal(second[:110], first[:110])  # the top, unchanged
    report = QCReport.from_json(sidecar.read_text())
    assert report.approval["was"] == "output" and report.approval["reviewer"] == "rework-folder"


def test_the_sources_camera_zones_apply_to_the_re_render_too(tmp_path, face_engine):
    zone = {"name": "corner", "kind": "always_mask", "polygon": [[0.0, 0.0], [0.25, 0.0], [0.25, 0.25], [0.0, 0.25]]}
    folder = settings_for(tmp_path, zones=[zone]).folders[0]
    item = put_in_review(folder, textured_image(tmp_path / "zoned.png"), face_engine, FACES)
    unmasked = pixels(tmp_path / "zoned.png")
    doc = parse_document(json.dumps({"id": item, "add": [{"box": [0.5, 0.5, 0.75, 0.75]}]}))
    approve(folder, FACES, lambda params: face_engine, doc, audit=None, source="test")
    published = pixels(folder.output / "zoned.png")
    assert np.abs(published - unmasked)[5:55, 5:75].mean() > 30  # the zone
    assert np.abs(published - unmasked)[125:175, 165:235].mean() > 30  # the reviewer's box
    origins = [e["origin"] for e in QCReport.from_json((folder.output / "zoned.png.veil.json").read_text()).edits]
    assert origins == ["zone:corner", "manual"]


def test_an_approved_spot_check_replaces_its_clean_result_and_leaves_spotcheck(tmp_path, face_engine):
    folder = settings_for(tmp_path).folders[0]
    item = put_in_review(folder, textured_image(tmp_path / "spot.png", seed=5), face_engine, FACES, place="spotcheck")
    for name in ("spot.png", "spot.png.veil.json"):  # the service published it clean, then copied it to spotcheck/
        (folder.output / name).write_bytes((folder.spotcheck / name).read_bytes())
    clean = pixels(folder.output / "spot.png")
    doc = parse_document(json.dumps({"id": item, "reviewer": "dan", "add": [{"box": [0.0, 0.0, 0.5, 0.5]}]}))
    done = approve(folder, FACES, lambda params: face_engine, doc, audit=None, source="test")
    assert done.name == "spot.png"
    assert np.abs(pixels(folder.output / "spot.png") - clean)[10:110, 10:150].mean() > 30
    assert QCReport.from_json((folder.output / "spot.png.veil.json").read_text()).approval["was"] == "spotcheck"
    assert not list(folder.spotcheck.iterdir())
    assert not [p.name for p in folder.output.iterdir() if p.name.startswith(".")]  # no staging left behind
