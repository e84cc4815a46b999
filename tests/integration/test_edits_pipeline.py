"""Edits with the real detectors and real media: an always-mask zone masks its pixels and is listed in the
sidecar; an ignore zone over a detected face leaves that face unmasked (and only it) and is listed with what it
suppressed; on video, zones hold on their frame range only."""

from __future__ import annotations

import json
import shutil
import time

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.edits import AddRegion, Edits, Suppression, box_polygon, polygon_footprint
from pipeline.mask import coverage, region_box
from pipeline.params import DetectorParams, MaskParams, Params
from pipeline.records import MaskRegion, ObjectClass
from pipeline.run import process_file
from pipeline.video.process import companion_name
from pipeline.video.qc import read_boxes

from tests.conftest import eval_set

MAGENTA = (255, 0, 255)
PARAMS = Params(detector=DetectorParams(classes=("face",)), mask=MaskParams(style="solid", solid_color=MAGENTA))
DOOR = box_polygon(0.0, 0.55, 0.18, 1.0)  # the bottom-left corner of the picture


@pytest.fixture(scope="module")
def group_photo(tmp_path_factory):
    """A real group photo (7 annotated faces), as PNG so the output's pixels can be compared exactly."""
    folder = eval_set("dlib_faces_voc")
    path = tmp_path_factory.mktemp("photo") / "group.png"
    Image.open(folder / "images" / "2007_007763.jpg").convert("RGB").save(path)
    return path


@pytest.fixture(scope="module")
def plain_run(group_photo, face_engine, tmp_path_factory):
    """The photo without edits: the reference for what the detector masks on its own."""
    dst = tmp_path_factory.mktemp("plain") / "group.png"
    report = process_file(group_photo, dst, PARAMS, face_engine, name="group.png")
    assert report.disposition != "failed", report.error
    return report, np.asarray(Image.open(dst).convert("RGB"))


def _footprint_map(polygon, height, width) -> np.ndarray:
    (x0, y0, x1, y1), footprint = polygon_footprint(polygon, height, width)
    full = np.zeros((height, width), bool)
    full[y0:y1, x0:x1] = footprint
    return full


def test_an_always_mask_zone_masks_its_pixels_and_is_listed(group_photo, plain_run, face_engine, tmp_path):
    plain_report, plain = plain_run
    zone = Edits(add=(AddRegion(DOOR, origin="zone:door"),))
    dst = tmp_path / "group.png"
    report = process_file(group_photo, dst, PARAMS, face_engine, name="group.png", edits=zone)
    assert report.disposition != "failed", report.error
    out = np.asarray(Image.open(dst).convert("RGB"))
    original = np.asarray(Image.open(group_photo).convert("RGB"))
    in_zone = _footprint_map(DOOR, *out.shape[:2])
    assert in_zone.mean() > 0.05  # the zone is a real share of the picture
    assert (out[in_zone] == MAGENTA).all()
    # Outside the zone the result is exactly the detector's own: the zone adds, it takes nothing away.
    assert (out[~in_zone] == plain[~in_zone]).all()
    assert (out[~in_zone] != original[~in_zone]).any(axis=-1).sum() > 100  # faces are still masked there
    assert report.edits == [{"kind": "add", "origin": "zone:door", "polygon": [list(p) for p in DOOR],
                             "frames": None, "object_class": None, "frames_masked": 1}]
    assert report.counts == plain_report.counts


def _lonely_face(report, shape) -> tuple[int, MaskRegion, list[MaskRegion]]:
    """A masked face whose region overlaps no other masked face's region, and the other regions."""
    masked = [(i, MaskRegion(region_box(d.box, ObjectClass.FACE, PARAMS.mask, shape), ObjectClass.FACE, d.score))
              for i, d in enumerate(report.detections) if d.masked]
    for index, region in masked:
        others = [r for j, r in masked if j != index]
        alone = coverage(shape, [region], PARAMS.mask) & coverage(shape, others, PARAMS.mask)
        if not alone.any():
            return index, region, others
    pytest.fail("no face stands apart in the group photo")


def test_an_ignore_zone_leaves_a_detected_face_unmasked_and_is_listed(group_photo, plain_run, face_engine, tmp_path):
    plain_report, plain = plain_run
    original = np.asarray(Image.open(group_photo).convert("RGB"))
    height, width = original.shape[:2]
    index, face, others = _lonely_face(plain_report, original.shape)
    x1, y1, x2, y2 = face.box
    # An ignore zone around the face's centre, a little wider than its region: a screen showing a broadcast.
    tv = box_polygon(max(0.0, x1 / width - 0.01), max(0.0, y1 / height - 0.01),
                     min(1.0, x2 / width + 0.01), min(1.0, y2 / height + 0.01))
    edits = Edits(suppress=(Suppression(tv, origin="ignore-zone:tv"),))

    dst = tmp_path / "group.png"
    report = process_file(group_photo, dst, PARAMS, face_engine, name="group.png", edits=edits)
    assert report.disposition != "failed", report.error
    out = np.asarray(Image.open(dst).convert("RGB"))

    face_pixels = coverage(original.shape, [face], PARAMS.mask)
    other_pixels = coverage(original.shape, others, PARAMS.mask)
    assert (plain[face_pixels] == MAGENTA).all()  # masked without the zone
    assert (out[face_pixels] == original[face_pixels]).all()  # left as it was with it
    assert (out[other_pixels] == MAGENTA).all()  # every other face is still masked
    assert report.edits == [{"kind": "suppress", "origin": "ignore-zone:tv", "polygon": [list(p) for p in tv],
                             "frames": None, "detections_suppressed": 1}]
    assert not report.detections[index].masked
    assert sum(d.masked for d in report.detections) == sum(d.masked for d in plain_report.detections) - 1
    assert report.counts["face"] == plain_report.counts["face"] - 1


def _still_clip(photo, path, frames: int, size=(320, 240)) -> np.ndarray:
    """A still camera: the same picture on every frame (so every frame has the same faces)."""
    picture = cv2.resize(np.asarray(Image.open(photo).convert("RGB")), size, interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "10"}
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return picture


def _frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_video_zones_hold_on_their_frame_range_only(group_photo, plain_run, face_engine, tmp_path):
    plain_report = plain_run[0]
    src, dst = tmp_path / "still.mp4", tmp_path / "out" / "still.mp4"
    dst.parent.mkdir()
    picture = _still_clip(group_photo, src, frames=8)
    height, width = picture.shape[:2]
    # The ignore zone covers one face of the photo (relative coordinates: the clip is the photo, resized).
    photo_shape = np.asarray(Image.open(group_photo)).shape
    photo_h, photo_w = photo_shape[:2]
    _, face, _ = _lonely_face(plain_report, photo_shape)
    x1, y1, x2, y2 = face.box
    tv = box_polygon(max(0.0, x1 / photo_w - 0.02), max(0.0, y1 / photo_h - 0.02),
                     min(1.0, x2 / photo_w + 0.02), min(1.0, y2 / photo_h + 0.02))
    edits = Edits(add=(AddRegion(DOOR, frames=(2, 4), origin="zone:door"),),
                  suppress=(Suppression(tv, frames=(5, 7), origin="ignore-zone:tv"),))

    report = process_file(src, dst, PARAMS, face_engine, name="still.mp4", edits=edits)
    assert report.disposition != "failed", report.error
    frames = _frames(dst)
    assert len(frames) == 8
    in_zone = _footprint_map(DOOR, height, width)
    inner = cv2.erode(in_zone.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # clear of codec bleed
    for index, frame in enumerate(frames):
        distance = np.abs(frame[inner].astype(int) - MAGENTA).max(axis=-1)
        if 2 <= index <= 4:
            assert np.percentile(distance, 99) < 40, index  # magenta, give or take the codec
        else:
            assert np.median(distance) > 100, index  # the picture, not the zone

    # The suppressed face: masked in the boxes companion up to frame 4, absent from it on frames 5-7.
    fx, fy = ((x1 + x2) / 2 / photo_w * width, (y1 + y2) / 2 / photo_h * height)
    near = {}
    for record in list(read_boxes(dst.with_name(companion_name(dst))))[1:]:
        near[record["f"]] = any(
            abs((r[0] + r[2]) / 2 - fx) < 10 and abs((r[1] + r[3]) / 2 - fy) < 10 for r in _boxes(record))
    assert all(near[f] for f in range(0, 5)) and not any(near[f] for f in range(5, 8)), near
    face_inner = np.zeros((height, width), bool)  # the middle of the face, in clip pixels
    cx0, cy0 = int(x1 / photo_w * width), int(y1 / photo_h * height)
    cx1, cy1 = int(np.ceil(x2 / photo_w * width)), int(np.ceil(y2 / photo_h * height))
    face_inner[cy0 + (cy1 - cy0) // 3: cy1 - (cy1 - cy0) // 3, cx0 + (cx1 - cx0) // 3: cx1 - (cx1 - cx0) // 3] = True
    for index, frame in enumerate(frames):
        magenta = np.median(np.abs(frame[face_inner].astype(int) - MAGENTA).max(axis=-1)) < 40
        assert magenta == (index < 5), index  # masked until the ignore zone starts, then the face as it is
    counts = {e["origin"]: e for e in report.edits}
    assert counts["zone:door"]["frames_masked"] == 3
    assert counts["ignore-zone:tv"]["detections_suppressed"] >= 3  # at least the face on each of frames 5-7


def _boxes(record) -> list[tuple[float, float, float, float]]:
    return [tuple(row[:4]) for row in record["mask"]]


def test_the_service_masks_a_folder_zone_end_to_end(group_photo, tmp_path):
    """The real service and worker: a file dropped into a folder with a zone comes out with the zone masked."""
    from daemon.config.settings import load_settings
    from daemon.service.lifecycle import Service

    (tmp_path / "in").mkdir()
    shutil.copy(group_photo, tmp_path / "in" / "group.png")
    zone = {"name": "door", "kind": "always_mask", "polygon": [list(p) for p in DOOR]}
    settings = load_settings(
        None,
        folders=[{"name": "cams", "ingest": tmp_path / "in", "output": tmp_path / "out", "zones": [zone]}],
        profiles={"default": PARAMS.model_dump(mode="json")},
        watch={"settle_s": 0.0, "mode": "poll", "poll_interval_s": 0.2},
        service={"instance": "t", "workers": 1, "state_dir": tmp_path / "state", "heartbeat_timeout_s": 60},
    )
    service = Service(settings)
    service.start_internals()
    try:
        deadline = time.monotonic() + 120
        while service.counters.done + service.counters.review + service.counters.failed < 1:
            assert time.monotonic() < deadline, "deadline passed"
            service.step()
    finally:
        service.stop_internals(10)
    assert service.counters.failed == 0
    published = tmp_path / ("review" if service.counters.review else "out")  # a faint face may ask for review
    out = np.asarray(Image.open(published / "group.png").convert("RGB"))
    assert (out[_footprint_map(DOOR, *out.shape[:2])] == MAGENTA).all()
    sidecar = json.loads((published / "group.png.veil.json").read_text())
    assert [(e["origin"], e["frames_masked"]) for e in sidecar["edits"]] == [("zone:door", 1)]
