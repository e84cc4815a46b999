"""Re-detection around known faces, with the real face model: batches agree with single runs, and the
windows find the faces a whole-frame pass finds."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.params import VideoParams
from pipeline.records import ObjectClass

from tests.conftest import missing

PHOTOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "eval" / "dlib_faces_voc" / "images"


@pytest.fixture(scope="module")
def photo():
    files = sorted(PHOTOS.glob("*")) if PHOTOS.is_dir() else []
    if not files:
        missing("../shared/eval")
    return cv2.cvtColor(cv2.imread(str(files[0])), cv2.COLOR_BGR2RGB)


def test_a_batch_gives_what_each_image_gives_alone(face_engine, photo):
    network = face_engine._detectors[0].network
    crops = [np.ascontiguousarray(photo[:128, :128]), np.ascontiguousarray(photo[-128:, -128:]), np.zeros((128, 128, 3), np.uint8)]
    for (batch_boxes, batch_scores), crop in zip(network.batch(crops, 0.05), crops):
        boxes, scores = network(crop, 0.05)
        np.testing.assert_allclose(batch_scores, scores, atol=1e-4)
        np.testing.assert_allclose(batch_boxes, boxes, atol=1e-2)


def test_windows_around_known_faces_find_them_again(face_engine, photo):
    frame_plan = {ObjectClass.FACE: VideoParams().scales["face"]}  # one native whole-frame pass, as on video
    whole = face_engine.detect(photo, scales=frame_plan)
    confident = whole.boxes[whole.scores >= 0.5]
    assert len(confident) >= 2  # the group photo has several clear faces
    batches = []
    again = face_engine.detect_around(photo, {ObjectClass.FACE: confident}, context=1.0,
                                      progress=lambda: batches.append(1))
    assert batches  # each batch of windows reports progress (the worker's heartbeat)
    for box in confident:
        ious = _iou(box, again.boxes)
        assert ious.max() >= 0.7, box


def test_without_a_free_input_size_a_class_is_not_re_detected(engine, photo):
    plates = np.array([[10, 10, 60, 30]], dtype=np.float32)
    assert len(engine.detect_around(photo, {ObjectClass.LICENSE_PLATE: plates}, context=1.0)) == 0


def _iou(box, boxes):
    x1 = np.maximum(box[0], boxes[:, 0]); y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2]); y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area(box) + area(boxes) - inter)


def test_the_photo_plan_reports_progress_after_every_window(engine, photo):
    beats = []
    engine.detect(photo, progress=lambda: beats.append(1))
    # Faces: whole, upside down, half scale at least; plates: at least the whole image. A large photo's plan
    # runs for minutes, and the worker's heartbeat comes from these calls.
    assert len(beats) >= 4
