"""Mixed scenes (pipeline/eval/mixed_scenes.py) on synthetic pictures: the pasted box is exact, the box is opaque,
placement keeps clear of the plate, and the same seed gives the same scene. No evaluation data needed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.eval.mixed_scenes import FACE, PLATE, FaceCrop, PlatePhoto, compose_scene, feather_alpha, paste_face


def synthetic_face(box=(10, 12, 50, 60), size=(64, 76)) -> FaceCrop:
    """A crop (w, h = size) of grey margin around a pure red ground-truth box."""
    pixels = np.full((size[1], size[0], 3), 128, dtype=np.uint8)
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = (0, 0, 255)  # BGR red
    return FaceCrop("synthetic", 1, 1, pixels, tuple(float(v) for v in box))


def test_feather_is_opaque_on_the_box_and_fades_to_the_edge():
    alpha = feather_alpha((64, 76), (10.0, 12.0, 50.0, 60.0))
    assert alpha[12:60, 10:50].min() == 1.0
    assert alpha[0, :].max() < 0.05 and alpha[:, 0].max() < 0.05 and alpha[-1, :].max() < 0.05
    assert 0.2 < alpha[6, 30] < 0.8  # half way across the top margin


def test_the_pasted_box_is_the_source_box_scaled_and_moved():
    for scale in (0.5, 1.0, 1.7, 2.5):
        canvas = np.zeros((400, 500, 3), dtype=np.uint8)
        box = paste_face(canvas, synthetic_face(), scale, (100, 80))
        sx, sy = round(64 * scale) / 64, round(76 * scale) / 76  # the scale of each axis after rounding the size
        assert np.allclose(box, (100 + 10 * sx, 80 + 12 * sy, 100 + 50 * sx, 80 + 60 * sy))
        red = canvas[:, :, 2] > 200
        ys, xs = np.nonzero(red)
        # the red pixels fill the box (to within the resampling's one-pixel seam)
        assert abs(xs.min() - box[0]) <= 1.5 and abs(xs.max() + 1 - box[2]) <= 1.5
        assert abs(ys.min() - box[1]) <= 1.5 and abs(ys.max() + 1 - box[3]) <= 1.5


def test_the_box_is_clipped_to_the_canvas():
    canvas = np.zeros((100, 100, 3), dtype=np.uint8)
    box = paste_face(canvas, synthetic_face(), 1.0, (70, -20))
    assert box == (80.0, 0.0, 100.0, 40.0)


def test_compose_keeps_clear_of_the_plate_and_is_deterministic(tmp_path: Path, monkeypatch):
    photo_path = tmp_path / "car.png"
    cv2.imwrite(str(photo_path), np.full((480, 640, 3), 90, dtype=np.uint8))
    photo = PlatePhoto("ucsd_lp", 7, photo_path, np.array([[280.0, 300, 360, 328]]), (70,))
    pool = [synthetic_face(), synthetic_face((8, 8, 40, 44), (48, 52))]
    scenes = [compose_scene(photo, pool, np.random.default_rng([0, 1, 7])) for _ in range(2)]
    first, again = scenes
    assert np.array_equal(first.image, again.image) and np.array_equal(first.boxes, again.boxes)
    assert first.classes[0] == PLATE and (first.classes[1:] == FACE).all() and 1 <= first.faces <= 3
    plate = first.boxes[0]
    untouched = first.image[int(plate[1]):int(plate[3]), int(plate[0]):int(plate[2])]
    assert (untouched == 90).all(), "a face was pasted over the plate"
    for box in first.boxes[1:]:
        height = box[3] - box[1]
        assert 28 <= height + 1e-6 and height <= 0.3 * 480 + 1e-6
    faces = first.boxes[1:]
    for i in range(len(faces)):
        for j in range(i + 1, len(faces)):
            a, b = faces[i], faces[j]
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), "faces overlap"
