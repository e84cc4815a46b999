"""What the station may show of review/: no link is followed (issue 17, item 14), and review-band regions a
profile left unmasked are masked on the page and announced per item (item 13). Items are written by hand."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

from pipeline.params import Params
from pipeline.qc import SIDECAR_SUFFIX

from daemon.review.rework import items_in

from tests.unit.review_station import AUTH, Station, as_json, station_settings, texture, write_item

UNMASKED_BAND = Params.model_validate({"mask": {"mask_review_band": False}})
FACE = {"class": "face", "score": 0.3, "box": [40.0, 32.0, 88.0, 80.0], "band": "review", "masked": False}


@pytest.fixture()
def folder(tmp_path):
    return station_settings(tmp_path)


def as_served(picture: np.ndarray) -> np.ndarray:
    """``picture`` as the station encodes it (JPEG), decoded."""
    from daemon.review.media import jpeg

    return np.asarray(Image.open(io.BytesIO(jpeg(picture))).convert("RGB")).astype(int)


def served(station: Station, path: str) -> np.ndarray:
    response, data = station.request("GET", path, headers=AUTH)
    assert response.status == 200, data
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


# -- item 14: links in review/ ------------------------------------------------------------------------------

def test_a_link_in_review_to_an_original_is_neither_listed_nor_served(tmp_path, folder):
    cams = folder.folders[0]
    secret = write_item(cams.originals, "secret.png", texture(seed=7))  # an original (a sidecar beside it, say)
    cams.review.mkdir(parents=True)
    (cams.review / "evil.png").symlink_to(cams.originals / "secret.png")
    shutil.copy(cams.originals / ("secret.png" + SIDECAR_SUFFIX), cams.review / ("evil.png" + SIDECAR_SUFFIX))
    (cams.review / "linked").symlink_to(cams.originals, target_is_directory=True)  # a link to the whole folder
    os.symlink(cams.originals / ("secret.png" + SIDECAR_SUFFIX), cams.review / ("other.png" + SIDECAR_SUFFIX))
    assert items_in(cams, "review") == []
    station = Station(folder)
    try:
        assert as_json(station.request("GET", "/api/items", headers=AUTH)[1])["total"] == 0
        for path in ("/api/item", "/api/image"):
            response, _ = station.request("GET", f"{path}?folder=cams&id={secret}", headers=AUTH)
            assert response.status == 404
    finally:
        station.stop()


def test_a_link_swapped_in_after_the_listing_is_refused_too(folder):
    cams = folder.folders[0]
    item = write_item(cams.review, "yard.png", texture())
    cams.originals.mkdir(parents=True)
    Image.fromarray(texture(seed=9)).save(cams.originals / "yard.png")
    station = Station(folder)
    try:
        assert station.request("GET", f"/api/item?folder=cams&id={item}", headers=AUTH)[0].status == 200
        (cams.review / "yard.png").unlink()
        (cams.review / "yard.png").symlink_to(cams.originals / "yard.png")
        response, data = station.request("GET", f"/api/image?folder=cams&id={item}", headers=AUTH)
        assert response.status == 404 and as_json(data)["status"] == 404
    finally:
        station.stop()


def test_open_confined_refuses_links_at_any_depth_fifos_and_escapes(tmp_path):
    from daemon.review.rework.confined import NotConfined, open_confined

    root = tmp_path / "review"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "real.jpg").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "o.jpg").write_bytes(b"secret")
    (root / "linkdir").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "link.jpg").symlink_to(root / "sub" / "real.jpg")
    os.mkfifo(root / "fifo.jpg")
    os.close(open_confined(root, root / "sub" / "real.jpg"))
    for bad in (root / "linkdir" / "o.jpg", root / "link.jpg", root / "fifo.jpg", root / "sub", tmp_path / "outside" / "o.jpg",
                root / "sub" / ".." / ".." / "outside" / "o.jpg", root / "missing.jpg"):
        done = threading.Event()
        with pytest.raises(NotConfined):
            try:
                open_confined(root, bad)
            finally:
                done.set()
        assert done.is_set()


# -- item 13: unmasked review-band regions ---------------------------------------------------------------------

def test_review_band_regions_left_unmasked_are_masked_on_the_page_and_announced(folder):
    cams = folder.folders[0]
    picture = texture(320, 240)
    item = write_item(cams.review, "yard.png", picture, detections=[FACE], params=UNMASKED_BAND)
    station = Station(folder)
    try:
        shown = served(station, f"/api/image?folder=cams&id={item}")
        change = np.abs(shown - as_served(picture))
        assert change[32:80, 40:88].mean() > 30  # the face's box: masked here, although the file shows it
        change[:112, :128] = 0  # the box and its margin, to whole JPEG blocks and their neighbours
        assert change.max() == 0  # elsewhere the picture as it is
        detail = as_json(station.request("GET", f"/api/item?folder=cams&id={item}", headers=AUTH)[1])
        assert detail["unmasked_review_band"] == 1 and "mask_review_band = false" in detail["unmasked_statement"]
    finally:
        station.stop()


def test_an_item_without_unmasked_regions_is_shown_as_it_is_and_says_nothing(folder):
    cams = folder.folders[0]
    picture = texture()
    masked_face = {**FACE, "masked": True}
    item = write_item(cams.review, "yard.png", picture, detections=[masked_face])
    station = Station(folder)
    try:
        assert np.array_equal(served(station, f"/api/image?folder=cams&id={item}"), as_served(picture))
        detail = as_json(station.request("GET", f"/api/item?folder=cams&id={item}", headers=AUTH)[1])
        assert detail["unmasked_review_band"] == 0 and detail["unmasked_statement"] is None
    finally:
        station.stop()


def test_approving_an_item_with_unmasked_review_band_regions_needs_a_decision(folder):
    cams = folder.folders[0]
    item = write_item(cams.review, "yard.png", texture(), detections=[FACE], params=UNMASKED_BAND)
    station = Station(folder)
    try:
        body = {"folder": "cams", "id": item, "reviewer": "alice"}
        response, data = station.request("POST", "/api/approve", json.dumps(body),
                                         {**AUTH, "Content-Type": "application/json"})
        assert response.status == 409 and "unmasked_review_band" in as_json(data)["error"]
        assert (cams.review / "yard.png").exists()  # still in review
        response, data = station.request("POST", "/api/approve", json.dumps({**body, "unmasked_review_band": "maybe"}),
                                         {**AUTH, "Content-Type": "application/json"})
        assert response.status == 400
    finally:
        station.stop()


def test_a_video_covers_review_band_detections_within_one_detection_stride():
    from daemon.review.unmasked import video_unmasked

    class FakeItem:
        class report:  # mimics Item.report
            params = UNMASKED_BAND.model_dump(mode="json")
            video = {"detect_stride": 3}

    rows = [{"f": 6, "det": [[10.0, 10.0, 30.0, 30.0, 1, 0.3], [50.0, 10.0, 70.0, 30.0, 1, 0.95]]}, {"f": 9, "det": []}]
    found = video_unmasked(FakeItem, rows)  # type: ignore[arg-type]
    assert found.count == 1 and found.frames == 1  # the confident one (0.95) is masked by the pipeline already
    assert sorted(found.boxes) == [4, 5, 6, 7, 8]
    frame = texture(96, 64)
    covered = found.cover(frame, 5)
    assert np.abs(covered.astype(int) - frame)[10:30, 10:30].mean() > 30 and np.array_equal(covered[:, 40:], frame[:, 40:])
    assert found.cover(frame, 9) is frame
