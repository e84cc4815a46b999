"""Re-detection around tracks in a crowd: a free-input detector takes every window, in batches, however
many there are; only when the windows' pixels would outweigh a whole pass does it search the whole frame.
A fake network records what it was given, so this needs no model."""

from __future__ import annotations

import numpy as np

from pipeline.detect.engine import ROI_MAX_PACKED_WINDOWS, Engine, _Loaded
from pipeline.params import DEFAULT_CLASSES, DetectorParams
from pipeline.qc import ModelRecord
from pipeline.records import ObjectClass

FRAME = np.zeros((1080, 1920, 3), np.uint8)


class Recording:
    """Finds nothing; remembers the shape of every input."""

    def __init__(self, fixed_input: int | None) -> None:
        self.fixed_input = fixed_input
        self.inputs: list[tuple[int, ...]] = []

    def __call__(self, rgb, min_score):
        self.inputs.append(rgb.shape)
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)

    def batch(self, images, min_score):
        return [self(image, min_score) for image in images]


def engine_with(network: Recording, object_class: ObjectClass) -> Engine:
    settings = DEFAULT_CLASSES[object_class.label]
    record = ModelRecord(name="fake", task=object_class.label, family="fake", sha256="0", providers=["cpu"])
    loaded = _Loaded(settings.model, network, object_class, settings.scales, record)  # type: ignore[arg-type]
    return Engine([loaded], DetectorParams(classes=(object_class.label,)))


def grid_of_boxes(count: int, side: float) -> np.ndarray:
    """``count`` small boxes spread over the 1920x1080 frame, none overlapping."""
    columns = 16
    return np.array([[60 + (i % columns) * 115, 40 + (i // columns) * 120, 60 + (i % columns) * 115 + side,
                      40 + (i // columns) * 120 + side] for i in range(count)], np.float32)


def test_a_crowd_of_faces_is_re_detected_in_windows_however_many():
    network = Recording(fixed_input=None)
    crowd = grid_of_boxes(120, 20.0)  # 120 faces of 20 px: 64 px windows, 24% of the frame
    engine_with(network, ObjectClass.FACE).detect_around(FRAME, {ObjectClass.FACE: crowd}, context=0.5)
    assert len(network.inputs) == 120 and all(shape[:2] == (64, 64) for shape in network.inputs)


def test_windows_covering_most_of_the_frame_give_way_to_one_whole_pass():
    network = Recording(fixed_input=None)
    large = grid_of_boxes(40, 100.0)  # 40 faces of 100 px: 256 px windows, 126% of the frame
    engine_with(network, ObjectClass.FACE).detect_around(FRAME, {ObjectClass.FACE: large}, context=0.5)
    assert len(network.inputs) == 1 and network.inputs[0][:2] == (1080, 1920)


def test_packed_windows_of_a_fixed_input_detector_are_capped_by_count():
    network = Recording(fixed_input=640)
    plates = grid_of_boxes(ROI_MAX_PACKED_WINDOWS + 1, 10.0)
    engine_with(network, ObjectClass.LICENSE_PLATE).detect_around(FRAME, {ObjectClass.LICENSE_PLATE: plates}, context=0.5)
    assert len(network.inputs) == 1  # the first window of the plate plan: the whole frame, letterboxed
