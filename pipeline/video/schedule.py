"""Which classes the detector looks for on which frame (the detection stride, plates on every k-th detected
frame), and the re-detection around tracks on the frames between."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.detect.engine import Engine
from pipeline.params import ScalePlan, VideoParams
from pipeline.records import Detections, ObjectClass
from pipeline.track.bytetrack import TrackObservation


def searched_classes(index: int, video: VideoParams, classes: frozenset[ObjectClass]) -> frozenset[ObjectClass]:
    """The classes the detector looks for on frame ``index``: faces every ``detect_stride`` frames, plates
    on every ``plate_every``-th of those."""
    if index % video.detect_stride:
        return frozenset()
    if index % video.plate_stride:
        return classes - {ObjectClass.LICENSE_PLATE}
    return classes


def redetected_classes(
    index: int, searched: frozenset[ObjectClass], video: VideoParams, classes: frozenset[ObjectClass],
) -> frozenset[ObjectClass]:
    """The classes not searched on frame ``index`` that are looked for around their tracks: faces on every
    such frame, plates on every ``plate_roi_every``-th (each costs a whole plate pass)."""
    if not video.roi_redetect:
        return frozenset()
    plates_due = bool(video.plate_roi_every) and index % video.plate_roi_every == 0
    return frozenset(c for c in classes - searched if c != ObjectClass.LICENSE_PLATE or plates_due)


def redetect_around(
    engine: Engine, rgb: np.ndarray, tracks: list[TrackObservation], context: float,
    scales: dict[ObjectClass, ScalePlan], progress: Callable[[], None],
) -> Detections:
    """Each class's detector on windows around its tracks' boxes (``Engine.detect_around``)."""
    boxes: dict[ObjectClass, list] = {}
    for track in tracks:
        boxes.setdefault(ObjectClass(track.object_class), []).append(track.box)
    arrays = {c: np.array(b, dtype=np.float32) for c, b in boxes.items()}
    return engine.detect_around(rgb, arrays, context=context, scales=scales, progress=progress)
