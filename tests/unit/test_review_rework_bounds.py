"""Rework documents cannot make a re-render take the machine (issue 17, item 15): key boxes are bounded by the
item's frames and a photo takes none, documents and their lists have a size limit, and the same checks hold
for documents dropped in rework/ while the service runs."""

from __future__ import annotations

import json
import os
import time

import pytest

from daemon.config.settings import load_settings
from daemon.review.rework import ReworkError, parse_document, to_edits
from daemon.review.rework.document import MAX_ADD, MAX_DOCUMENT_BYTES, MAX_POINTS
from daemon.review.rework.edits import MAX_REGIONS
from daemon.review.rework_watch import ReworkQueue

from tests.unit.review_station import texture, write_item

SHA = "ab" * 32
BOX = [0.1, 0.1, 0.2, 0.2]


def doc(item: str = SHA, **fields) -> str:
    return json.dumps({"schema": "veil.rework/1", "id": item, **fields})


def test_a_photo_takes_no_keys():
    parsed = parse_document(doc(add=[{"keys": {"0": BOX}}]))
    with pytest.raises(ReworkError, match="a photo takes no keys"):
        to_edits(parsed, allow_unmask=False, frame_count=None)


@pytest.mark.parametrize("keys", [{"0": BOX, "12": BOX}, {"0": BOX, "1000000": BOX}, {"100000000": BOX}])
def test_keys_past_the_last_frame_are_refused_at_once(keys):
    parsed = parse_document(doc(add=[{"keys": keys}]))
    start = time.process_time()
    with pytest.raises(ReworkError, match="past the video's last frame"):
        to_edits(parsed, allow_unmask=False, frame_count=12)
    assert time.process_time() - start < 0.5  # refused before any interpolation


def test_keys_within_the_video_still_become_regions():
    parsed = parse_document(doc(add=[{"keys": {"0": BOX, "11": [0.5, 0.5, 0.6, 0.6]}}]))
    edits, counts = to_edits(parsed, allow_unmask=False, frame_count=12)
    assert counts.regions == 1 and len(edits.add) == 12 and edits.add[-1].frames == (11, 11)


def test_the_regions_of_one_document_are_capped_even_in_a_very_long_video():
    parsed = parse_document(doc(add=[{"keys": {"0": BOX, str(MAX_REGIONS): BOX}}]))
    start = time.process_time()
    with pytest.raises(ReworkError, match=f"more than {MAX_REGIONS}"):
        to_edits(parsed, allow_unmask=False, frame_count=10**9)
    assert time.process_time() - start < 0.5


@pytest.mark.parametrize("text, reason", [
    (doc(reviewer="x" * 10, add=[{"box": BOX}]) + " " * MAX_DOCUMENT_BYTES, "larger than"),
    (doc(add=[{"box": BOX}] * (MAX_ADD + 1)), "add"),
    (doc(add=[{"polygon": [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]] * (MAX_POINTS // 3 + 1)}]), "polygon"),
    (doc(false_positives=[{"polygon": [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]] * (MAX_POINTS // 3 + 1)}]), "polygon"),
    (doc()[:-1] + ', "add": ' + "[" * 50_000 + "]" * 50_000 + "}", "recursion"),  # nested 50,000 deep
])
def test_documents_and_their_lists_have_a_size_limit(text, reason):
    with pytest.raises(ReworkError, match="invalid rework document") as caught:
        parse_document(text)
    assert reason in str(caught.value)


# -- the same under veil serve: documents dropped in rework/ -------------------------------------------------

def settings_with_item(tmp_path):
    settings = load_settings(None, folders=[{"name": "cams", "ingest": tmp_path / "in", "output": tmp_path / "out"}],
                             watch={"settle_s": 0}, drift={"store_dir": tmp_path / "state"})
    folder = settings.folders[0]
    item = write_item(folder.review, "yard.png", texture())
    folder.rework.mkdir(parents=True)
    return settings, folder, item


def run_queue(settings, folder, name: str) -> str:
    rework = ReworkQueue(settings, engines=lambda params: pytest.fail("no re-render is needed to refuse it"))
    try:
        rework.tick(now=1e9)
        deadline = time.monotonic() + 20
        while not (folder.rework / "failed" / name).exists():
            assert time.monotonic() < deadline, "the document did not fail"
            time.sleep(0.02)
    finally:
        rework.close()
    return json.loads((folder.rework / "failed" / name).read_text())["error"]


def test_a_dropped_document_with_keys_for_a_photo_fails_without_a_re_render(tmp_path):
    settings, folder, item = settings_with_item(tmp_path)
    (folder.rework / f"{item}.rework.json").write_text(doc(item, add=[{"keys": {"0": BOX, "100000000": BOX}}]))
    assert "a photo takes no keys" in run_queue(settings, folder, f"{item}.error.json")


def test_a_dropped_document_too_large_fails_unread(tmp_path):
    settings, folder, item = settings_with_item(tmp_path)
    with open(folder.rework / f"{item}.rework.json", "wb") as handle:
        handle.truncate(64 * MAX_DOCUMENT_BYTES)  # sparse: 64 MiB of nothing
    assert "larger than" in run_queue(settings, folder, f"{item}.error.json")


def test_a_dropped_link_is_not_followed(tmp_path):
    settings, folder, item = settings_with_item(tmp_path)
    target = tmp_path / "elsewhere.json"
    target.write_text(doc(item, add=[{"box": BOX}]))
    os.symlink(target, folder.rework / f"{item}.rework.json")
    assert "cannot read" in run_queue(settings, folder, f"{item}.error.json")
