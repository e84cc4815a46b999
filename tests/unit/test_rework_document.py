"""Rework documents: parsing, key-box interpolation, the edits they become, and bad documents in rework/."""

from __future__ import annotations

import json
import time

import pytest

from daemon.config.settings import load_settings
from daemon.review.rework import ReworkError, interpolate_keys, parse_document, to_edits
from daemon.review.rework_watch import ReworkQueue

SHA = "ab" * 32


def doc(**fields) -> str:
    return json.dumps({"schema": "veil.rework/1", "id": SHA, **fields})


def test_the_smallest_document_has_no_edits_and_a_default_reviewer():
    parsed = parse_document(doc())
    assert parsed.id == SHA and parsed.reviewer == "rework-folder"
    edits, counts = to_edits(parsed, allow_unmask=True, frame_count=None)
    assert edits.is_empty() and counts.regions == 0 and counts.false_positives == 0


@pytest.mark.parametrize("text, reason", [
    ("", "invalid rework document"),
    ("[]", "invalid rework document"),
    ('{"id": "' + SHA + '", "schema": "veil.rework/2"}', "schema"),
    (json.dumps({"id": "abc"}), "SHA-256"),
    (doc(add=[{"box": [0.1, 0.1, 0.05, 0.2]}]), "empty"),
    (doc(add=[{"box": [0.1, 0.1, 1.5, 0.2]}]), "relative"),
    (doc(add=[{"box": [0.1, 0.1, 0.2, 0.2], "polygon": [[0, 0], [1, 0], [1, 1]]}]), "exactly one"),
    (doc(add=[{}]), "exactly one"),
    (doc(add=[{"polygon": [[0, 0], [1, 0]]}]), "at least 3"),
    (doc(add=[{"box": [0.1, 0.1, 0.2, 0.2], "frames": [5, 2]}]), "inclusive range"),
    (doc(add=[{"keys": {}}]), "at least one key"),
    (doc(add=[{"keys": {"-1": [0.1, 0.1, 0.2, 0.2]}}]), ">= 0"),
    (doc(add=[{"keys": {"1": [0.1, 0.1, 0.2, 0.2]}, "frames": [1, 2]}]), "own frames"),
    (doc(add=[{"box": [0.1, 0.1, 0.2, 0.2], "colour": "red"}]), "Extra inputs"),
    (doc(false_positives=[{"frames": [1, 2]}]), "exactly one"),
    (doc(reviewer=""), "reviewer"),
    (doc(reviewer="a\nb"), "reviewer"),
])
def test_bad_documents_are_refused_with_the_reason(text, reason):
    with pytest.raises(ReworkError, match="invalid rework document") as caught:
        parse_document(text)
    assert reason in str(caught.value)


def test_a_polygon_with_no_area_is_refused_when_the_edits_are_built():
    parsed = parse_document(doc(add=[{"polygon": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}]))
    with pytest.raises(ReworkError, match="no area"):
        to_edits(parsed, allow_unmask=False, frame_count=None)


def test_a_single_key_covers_its_own_frame_only():
    assert interpolate_keys({7: (0.1, 0.2, 0.3, 0.4)}) == [(7, (0.1, 0.2, 0.3, 0.4))]


def test_key_boxes_are_interpolated_linearly_on_every_frame_between_them():
    frames = interpolate_keys({10: (0.5, 0.5, 0.7, 0.9), 0: (0.1, 0.1, 0.3, 0.5), 20: (0.5, 0.5, 0.7, 0.9)})
    assert [f for f, _ in frames] == list(range(21))  # keys in any order; each frame once
    by_frame = dict(frames)
    assert by_frame[0] == (0.1, 0.1, 0.3, 0.5)
    assert by_frame[5] == pytest.approx((0.3, 0.3, 0.5, 0.7))
    assert by_frame[10] == pytest.approx((0.5, 0.5, 0.7, 0.9))
    assert by_frame[15] == pytest.approx((0.5, 0.5, 0.7, 0.9))  # a still stretch stays still


def test_a_track_becomes_one_region_per_run_of_equal_boxes():
    parsed = parse_document(doc(add=[{"keys": {"0": [0.1, 0.1, 0.2, 0.2], "2": [0.3, 0.1, 0.4, 0.2],
                                               "6": [0.3, 0.1, 0.4, 0.2]}, "class": "face"}]))
    edits, counts = to_edits(parsed, allow_unmask=False, frame_count=7)
    assert counts.regions == 1  # the reviewer added one thing
    assert [r.frames for r in edits.add] == [(0, 0), (1, 1), (2, 6)]
    assert edits.add[1].polygon[0] == pytest.approx((0.2, 0.1))
    assert all(r.origin == "manual" and r.object_class == "face" for r in edits.add)


def test_boxes_polygons_and_ranges_become_add_regions():
    parsed = parse_document(doc(add=[{"box": [0.1, 0.2, 0.3, 0.4]},
                                     {"polygon": [[0.5, 0.5], [0.9, 0.5], [0.7, 0.9]], "frames": [3, 8]}]))
    edits, _ = to_edits(parsed, allow_unmask=False, frame_count=None)
    assert edits.add[0].polygon == ((0.1, 0.2), (0.3, 0.2), (0.3, 0.4), (0.1, 0.4)) and edits.add[0].frames is None
    assert edits.add[1].frames == (3, 8) and len(edits.add[1].polygon) == 3


def test_false_positives_unmask_only_where_the_profile_allows_it():
    parsed = parse_document(doc(false_positives=[{"box": [0.1, 0.1, 0.2, 0.2], "frames": [4, 4]}]))
    kept, counts = to_edits(parsed, allow_unmask=False, frame_count=None)
    assert kept.suppress == () and counts.false_positives == 1 and not counts.unmask_allowed
    dropped, counts = to_edits(parsed, allow_unmask=True, frame_count=None)
    assert len(dropped.suppress) == 1 and dropped.suppress[0].frames == (4, 4) and counts.unmask_allowed
    assert dropped.suppress[0].origin == "false-positive"


# -- the rework folder ----------------------------------------------------------------------------------

def wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("content, error", [
    (b"{not json", "invalid rework document"),
    (doc().encode(), "no item with id"),
])
def test_a_bad_or_unknown_document_goes_to_failed_with_its_error_and_the_queue_goes_on(tmp_path, content, error):
    settings = load_settings(None, folders=[{"name": "cams", "ingest": tmp_path / "in", "output": tmp_path / "out"}],
                             watch={"settle_s": 0}, drift={"store_dir": tmp_path / "state"})
    folder = settings.folders[0]
    folder.rework.mkdir(parents=True)
    (folder.rework / f"{SHA}.rework.json").write_bytes(content)
    rework = ReworkQueue(settings, engines=lambda params: pytest.fail("no engine is needed"))
    try:
        rework.tick(now=1e9)
        wait_for(lambda: (folder.rework / "failed" / f"{SHA}.error.json").exists())
        assert (folder.rework / "failed" / f"{SHA}.rework.json").read_bytes() == content
        assert error in json.loads((folder.rework / "failed" / f"{SHA}.error.json").read_text())["error"]
        wait_for(rework.idle)  # the queue lets go of a name only after filing it: a second tick earlier skips it
        (folder.rework / f"{SHA}.rework.json").write_bytes(content)  # the same name again: kept apart
        rework.tick(now=2e9)
        wait_for(lambda: (folder.rework / "failed" / f"{SHA}.2.rework.json").exists())
    finally:
        rework.close()
    assert not list(folder.rework.glob("*.rework.json"))


def test_a_document_left_mid_work_by_a_stop_is_put_back(tmp_path):
    settings = load_settings(None, folders=[{"name": "cams", "ingest": tmp_path / "in", "output": tmp_path / "out"}],
                             drift={"store_dir": tmp_path / "state"})
    folder = settings.folders[0]
    (folder.rework / ".work").mkdir(parents=True)
    (folder.rework / ".work" / f"{SHA}.rework.json").write_text(doc())
    ReworkQueue(settings, engines=None).close()
    assert (folder.rework / f"{SHA}.rework.json").read_text() == doc()


def test_a_document_still_being_written_is_left_until_it_settles(tmp_path):
    settings = load_settings(None, folders=[{"name": "cams", "ingest": tmp_path / "in", "output": tmp_path / "out"}],
                             watch={"settle_s": 3600}, drift={"store_dir": tmp_path / "state"})
    folder = settings.folders[0]
    folder.rework.mkdir(parents=True)
    (folder.rework / f"{SHA}.rework.json").write_text('{"id": "')  # half written
    rework = ReworkQueue(settings, engines=None)
    try:
        rework.tick(now=1e9)
        assert rework.idle()
    finally:
        rework.close()
    assert (folder.rework / f"{SHA}.rework.json").exists() and not (folder.rework / "failed").exists()
