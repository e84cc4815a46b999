"""Which video frames get the deep pass: the photo plan, once per interval of media time and after a scene cut.

The light frame plan misses what only the photo plan's extra views find (upside down, half scale, 2x, tiles):
a face at the edge, tilted, in shade, can stay unmasked for a whole clip. The deep pass on keyframes finds it
once; the tracker and the look-ahead's back-fill carry it over the frames around.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.params import DetectorParams
from pipeline.records import Detections, ObjectClass
from pipeline.track.matching import overlapped

_THUMB = (64, 36)  # a scene cut changes the whole picture: a thumbnail's histogram shows it
_BINS = 32
CUT_DISTANCE = 0.5  # Bhattacharyya distance between consecutive frames' histograms above this: a new scene
_MIN_CUT_GAP_S = 0.2  # flashes and strobes: at most one cut-triggered deep pass per this much media time
SAME_OBJECT_IOU = 0.3  # a light-plan detection this close to a deep one saw the same object


@dataclass
class KeyframeStats:
    """Per-file figures of the deep pass, for the QC sidecar."""

    keyframes: int = 0
    scene_cuts: int = 0
    deep_found: int = 0  # confident objects the deep pass found on its keyframes
    light_missed: int = 0  # of those, objects the light frame plan did not find on the same frame

    @property
    def light_miss_rate(self) -> float:
        return self.light_missed / self.deep_found if self.deep_found else 0.0


class KeyframeClock:
    """Feed every frame in order with its time in seconds; ``due`` says whether it gets the deep pass.

    ``interval_s`` <= 0 turns time-based keyframes off (scene cuts still count when ``on_cuts``).
    """

    def __init__(self, interval_s: float, *, on_cuts: bool = True) -> None:
        self.interval_s = interval_s
        self.on_cuts = on_cuts
        self.stats = KeyframeStats()
        self._next_due: float | None = None
        self._last_deep = -np.inf
        self._histogram: np.ndarray | None = None

    def due(self, time_s: float, rgb: np.ndarray) -> bool:
        cut = self._scene_cut(rgb) if self.on_cuts else False
        timed = self.interval_s > 0 and (self._next_due is None or time_s >= self._next_due - 1e-6)
        cut = cut and time_s - self._last_deep >= _MIN_CUT_GAP_S
        if not (timed or cut):
            return False
        self.stats.keyframes += 1
        self.stats.scene_cuts += int(cut and not timed)
        self._last_deep = time_s
        if self.interval_s > 0:
            self._next_due = time_s + self.interval_s
        return True

    def _scene_cut(self, rgb: np.ndarray) -> bool:
        thumb = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), _THUMB, interpolation=cv2.INTER_AREA)
        histogram = cv2.calcHist([thumb], [0], None, [_BINS], [0, 256])
        previous, self._histogram = self._histogram, histogram
        if previous is None:
            return False
        return cv2.compareHist(previous, histogram, cv2.HISTCMP_BHATTACHARYYA) > CUT_DISTANCE


def light_misses(deep: Detections, light: Detections, detector: DetectorParams) -> tuple[int, int]:
    """On one keyframe: the confident objects the deep pass found, and how many of them no light-plan
    detection (down to the review floor) overlaps."""
    found = missed = 0
    for object_class in ObjectClass:
        confident = (deep.classes == int(object_class)) & (deep.scores >= detector.thresholds(object_class).threshold)
        boxes = deep.boxes[confident]
        if not len(boxes):
            continue
        seen = light.boxes[light.classes == int(object_class)]
        found += len(boxes)
        missed += int((~overlapped(boxes, seen, SAME_OBJECT_IOU)).sum())
    return found, missed
