"""The occluded evaluation sets are what they claim (pipeline/eval/occluded.py): faces covered where a face is,
and photos cut through their first face with every box clipped to what is left of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.eval.occluded import OCCLUSIONS, build_occluded_set

FACE, PLATE = 1, 2
GREY = 128


@pytest.fixture
def small_set(tmp_path):
    """One 200x100 grey photo: faces at x 40-80 and 120-160, a plate at the bottom left; one photo without."""
    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((100, 200, 3), GREY, np.uint8)).save(tmp_path / "images" / name)
    annotations = [{"id": 1, "image_id": 1, "category_id": FACE, "bbox": [40, 20, 40, 40]},
                   {"id": 2, "image_id": 1, "category_id": FACE, "bbox": [120, 10, 40, 40]},
                   {"id": 3, "image_id": 1, "category_id": PLATE, "bbox": [10, 80, 40, 10]}]
    images = [{"id": 1, "file_name": "a.png", "width": 200, "height": 100},
              {"id": 2, "file_name": "b.png", "width": 200, "height": 100}]
    (tmp_path / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                          "categories": []}))
    return tmp_path


def built(small_set, tmp_path, kind):
    path = build_occluded_set(small_set, tmp_path / kind, kind)
    data = json.loads(path.read_text())
    photo = np.asarray(Image.open(path.parent / "images" / "a.jpg").convert("RGB")).astype(np.int16)
    return data, photo


@pytest.mark.parametrize("kind", ["sunglasses", "face_mask"])
def test_a_covering_is_painted_inside_each_face_and_nowhere_else(small_set, tmp_path, kind):
    data, photo = built(small_set, tmp_path, kind)
    painted = np.abs(photo - GREY).max(axis=2) > 30
    inside = np.zeros_like(painted)
    for x, y, w, h in ([40, 20, 40, 40], [120, 10, 40, 40]):
        assert painted[y:y + h, x:x + w].mean() > 0.15  # the eyes' band or the mask: a fair share of the face
        inside[y:y + h, x:x + w] = True
    assert not painted[~inside].any()
    assert [a["bbox"] for a in data["annotations"]] == [[40, 20, 40, 40], [120, 10, 40, 40], [10, 80, 40, 10]]


def test_a_left_cut_runs_through_the_middle_of_the_leftmost_face(small_set, tmp_path):
    data, photo = built(small_set, tmp_path, "cut_left")
    assert photo.shape[:2] == (100, 140)  # cut at x 60, the first face's middle
    assert data["images"][0]["width"] == 140
    # the first face keeps its right half, the second moves with the cut, the plate is cut away
    assert [a["bbox"] for a in data["annotations"]] == [[0, 20, 20, 40], [60, 10, 40, 40]]


def test_a_top_cut_runs_through_the_middle_of_the_topmost_face(small_set, tmp_path):
    data, photo = built(small_set, tmp_path, "cut_top")
    assert photo.shape[:2] == (70, 200)  # cut at y 30, the top face's middle
    assert [a["bbox"] for a in data["annotations"]] == [[40, 0, 40, 30], [120, 0, 40, 20], [10, 50, 40, 10]]


def test_a_photo_without_a_face_is_left_whole(small_set, tmp_path):
    for kind in OCCLUSIONS:
        data = json.loads(build_occluded_set(small_set, tmp_path / kind, kind).read_text())
        assert data["images"][1]["width"] == 200 and data["images"][1]["height"] == 100
