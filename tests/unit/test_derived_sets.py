"""The loop every derived evaluation set shares (pipeline/eval/derived.py): the photos it picks, where it writes
them, and the boxes and records it keeps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.eval.derived import Derived, build_derived_set


def test_every_nth_photo_is_edited_written_flat_and_its_boxes_kept_as_edited(tmp_path):
    source = tmp_path / "set"
    (source / "images" / "day").mkdir(parents=True)
    images, annotations = [], []
    for index in range(5):  # ids 1-5, each photo a shade of its own; photo 4 has no box
        name = f"day/{index}.png"
        Image.fromarray(np.full((40, 60, 3), 40 * index, np.uint8)).save(source / "images" / name)
        images.append({"id": index + 1, "file_name": name, "width": 60, "height": 40})
        if index != 3:
            annotations.append({"id": 10 + index, "image_id": index + 1, "category_id": 1, "bbox": [5, 5, 10, 10],
                                "segmentation": [[5, 5, 15, 5, 15, 15]]})
    (source / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                        "categories": [{"id": 1, "name": "face"}]}))
    seen = []

    def halve(position: int, rgb: np.ndarray, boxes: list[dict]) -> Derived:
        seen.append((position, int(rgb[0, 0, 0]), len(boxes)))
        return Derived(rgb[::2, ::2], [{**b, "bbox": [v / 2 for v in b["bbox"]]} for b in boxes], "half",
                       {"halved": True})

    gt = json.loads(build_derived_set(source, tmp_path / "out", 2, halve, 90).read_text())

    assert seen == [(0, 0, 1), (1, 80, 1), (2, 160, 1)]  # ids 1, 3, 5 in order, read as they were
    assert [i["file_name"] for i in gt["images"]] == ["day_0_half.jpg", "day_2_half.jpg", "day_4_half.jpg"]
    assert all(i["source_file"].startswith("day/") and i["halved"] and (i["width"], i["height"]) == (30, 20)
               for i in gt["images"])
    assert all(Image.open(tmp_path / "out" / "images" / i["file_name"]).size == (30, 20) for i in gt["images"])
    assert [a["bbox"] for a in gt["annotations"]] == [[2.5, 2.5, 5, 5]] * 3
    assert not any("segmentation" in a for a in gt["annotations"])  # the edit may have moved it
    assert gt["categories"] == [{"id": 1, "name": "face"}]


def test_a_photo_that_cannot_be_read_is_named_in_a_clear_error(tmp_path):
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "images" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    (tmp_path / "set" / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "cut.jpg", "width": 60, "height": 40}], "annotations": [],
        "categories": [{"id": 1, "name": "face"}]}))

    def unchanged(position: int, rgb: np.ndarray, boxes: list[dict]) -> Derived:
        return Derived(rgb, boxes)

    with pytest.raises(ValueError, match=r"cannot read .*cut\.jpg"):
        build_derived_set(tmp_path / "set", tmp_path / "out", 1, unchanged, 90)
