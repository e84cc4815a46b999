"""Which video frames get the deep pass: the photo plan, once per interval of media time and after a scene cut.

The light frame plan misses what only the photo plan's extra views find (upside down, half scale, 2x, tiles):
a face at the edge, tilted, in shade, can stay unmasked for a whole clip. The deep pass on keyframes finds it
once; the tracker and the look-ahead's back-fill carry it over the frames around.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.params import DetectorParams, ScalePlan
from pipeline.records import Detections, ObjectClass
from pipeline.track.bytetrack import TrackObservation
from pipeline.track.matching import iou_matrix, overlapped
from pipeline.track.motion import roll_degrees

_THUMB = (64, 36)  # a scene cut changes the whole picture: a thumbnail's histogram shows it
_BINS = 32
CUT_DISTANCE = 0.5  # Bhattacharyya distance between consecutive frames' histograms above this: a new scene
_MIN_CUT_GAP_S = 0.2  # flashes and strobes: at most one cut-triggered deep pass per this much media time
SAME_OBJECT_IOU = 0.3  # a light-plan detection this close to a deep one saw the same object
# The camera rolled this far since the tilted views last looked: they look again on the next keyframe. A hand
# holding a camera rolls it a few degrees; faces upright views miss lean 30 degrees and more.
ROLLED_DEGREES = 20.0


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
        self.cut = False  # whether the last frame ``due`` was a scene cut

    def due(self, time_s: float, grey: np.ndarray | None) -> bool:
        """``grey``: the frame in grey, at any size (``pipeline.track.motion.small_grey``); None only when the
        clock does not watch for cuts."""
        if self.on_cuts and grey is None:
            raise ValueError("a clock that watches for scene cuts needs every frame in grey")
        cut = self._scene_cut(grey) if self.on_cuts and grey is not None else False
        timed = self.interval_s > 0 and (self._next_due is None or time_s >= self._next_due - 1e-6)
        cut = self.cut = cut and time_s - self._last_deep >= _MIN_CUT_GAP_S
        if not (timed or cut):
            return False
        self.stats.keyframes += 1
        self.stats.scene_cuts += int(cut and not timed)
        self._last_deep = time_s
        if self.interval_s > 0:
            self._next_due = time_s + self.interval_s
        return True

    def _scene_cut(self, grey: np.ndarray) -> bool:
        thumb = cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA)
        histogram = cv2.calcHist([thumb], [0], None, [_BINS], [0, 256])
        previous, self._histogram = self._histogram, histogram
        if previous is None:
            return False
        return cv2.compareHist(previous, histogram, cv2.HISTCMP_BHATTACHARYYA) > CUT_DISTANCE


class TiltedViews:
    """Which keyframes also get the photo plan's 45-degree face views: a scene's first keyframe (the clip's
    first, or a cut), each keyframe after one where they added a face the upright views had not found, the
    first after the camera rolled ``ROLLED_DEGREES`` or more since they last ran (``rolled``: a camera turned
    askew mid-shot), and otherwise every ``every``-th keyframe (0: none). A camera held askew leans every
    face of a shot, and there the upright views miss many; on an upright shot the tilted views find nothing
    new, and running them on every keyframe would cost a tenth more of a clip's time
    (docs/video.md#evaluation-on-video).

    Where they found a face the light plan's views did not find surely on the last keyframe, the shot leans:
    until the next keyframe, the light plan's face pass on the frames between gets the view that found it too
    (``light_plans``; both where each found one), so the tracks of leaning faces are found again there rather
    than carried on their predictions alone. A camera held askew leans its faces one way, and the other view
    would cost as much again for nothing.
    Where they did so at both ends of a keyframe interval, the lean is the shot's, not a one-off find: the
    file goes to review (``video.tilted_review``), since leaning faces are found less surely than upright ones."""

    def __init__(self, every: int) -> None:
        self.every = every
        self._skipped = max(0, every - 1)  # keyframes in a row they were not run on: the first one is due
        self._adding = False  # they added a face on the last keyframe they ran on
        self._leaning: tuple[int, ...] = ()  # the views that found one the light plan's views did not find surely
        self._roll = 0.0  # degrees the camera rolled since they last ran
        self.keyframes = 0  # keyframes they ran on, for the QC sidecar
        self.added = 0  # faces they added there
        self.frames = 0  # light passes between keyframes that got them
        self.frame_views: Counter[str] = Counter()  # and the tilted views those got, by their degrees
        self.leaning_intervals = 0  # keyframe intervals that lean at both ends: a leaning shot

    def due(self, cut: bool) -> bool:
        """Called once per keyframe, in order; ``cut``: it is the first after a scene cut."""
        if not self.every:
            return False
        due = cut or self._adding or abs(self._roll) >= ROLLED_DEGREES or self._skipped + 1 >= self.every
        self._skipped = 0 if due else self._skipped + 1
        self._roll = 0.0 if due else self._roll
        self.keyframes += due
        return due

    def rolled(self, motion: np.ndarray | None) -> None:
        """Every frame, in order: the camera's motion into it (``CameraMotion``; None where it is not followed)."""
        if motion is not None:
            self._roll += roll_degrees(motion)

    def ran(self, added: int, leaning: tuple[int, ...]) -> None:
        """What the tilted views added on this keyframe (nothing where they were not due), and which of them
        (``ScalePlan.tilt_sides``) found faces the light plan's views had not found surely (``DeepFinds``)."""
        self.leaning_intervals += bool(self._leaning and leaning)
        self._adding, self._leaning = added > 0, leaning
        self.added += added

    def light_plans(self, plans: dict[ObjectClass, ScalePlan]) -> dict[ObjectClass, ScalePlan]:
        """A light pass's plans: while the shot leans, the face plan with the 45-degree views it leans by, at
        the light plan's own scale."""
        if not (self._leaning and ObjectClass.FACE in plans):
            return plans
        self.frames += 1
        self.frame_views.update(f"{side:+d}" for side in self._leaning)
        leaning = {"tilt_45": True, "tilt_sides": self._leaning}
        return {**plans, ObjectClass.FACE: plans[ObjectClass.FACE].model_copy(update=leaning)}


def light_misses(deep: Detections, light: Detections, detector: DetectorParams) -> tuple[int, Detections]:
    """On one keyframe: how many confident objects the deep pass found, and those of them that no light-plan
    detection (down to the review floor) overlaps."""
    found, missed = 0, []
    for object_class in ObjectClass:
        confident = deep[(deep.classes == int(object_class)) & (deep.scores >= detector.thresholds(object_class).threshold)]
        if not len(confident):
            continue
        seen = light.boxes[light.classes == int(object_class)]
        found += len(confident)
        missed.append(confident[~overlapped(confident.boxes, seen, SAME_OBJECT_IOU)])
    return found, Detections.concat(missed)


def tracks_of(found: Detections, observations: Sequence[TrackObservation]) -> list[tuple[int, int | None]]:
    """Each found object's class and the track it belongs to: the same class's track box it overlaps most, at
    ``SAME_OBJECT_IOU`` or more (None: no track there). One overlap matrix per class: it runs on every
    detected frame, against every track."""
    result: list[tuple[int, int | None]] = [(int(c), None) for c in found.classes]
    for object_class in {int(c) for c in found.classes}:
        candidates = [o for o in observations if o.object_class == object_class]
        if not candidates:
            continue
        rows = np.flatnonzero(found.classes == object_class)
        overlaps = iou_matrix(found.boxes[rows], np.array([o.box for o in candidates]))
        for row, overlap, best in zip(rows, overlaps, overlaps.argmax(axis=1)):
            if overlap[best] >= SAME_OBJECT_IOU:
                result[row] = (object_class, candidates[best].track_id)
    return result


class LightBlindness:
    """Which light-plan misses outlast a keyframe interval, per class.

    A keyframe's deep find that the light plan missed there is *blind* when the light plan (a frame's search
    or a re-detection around its track) never finds that object on any other frame either: between keyframes
    only its track's prediction and back-fill mask it. A one-off blind find is mostly a spurious one, or a
    still object the track carries well. Blind finds of one class on two keyframes in a row mean the light
    plan saw nothing of something over a whole interval, the same object or one that moved (a moving object
    the tracker loses comes back as a new track): that is where a leak between keyframes can hide.
    """

    def __init__(self) -> None:
        self._keyframes: list[int] = []
        self._missed: dict[int, list[tuple[int, int | None]]] = {}  # keyframe -> (class, track id or None)
        self._seen: set[int] = set()  # tracks the light plan found on some frame

    def keyframe(self, index: int, missed: list[tuple[int, int | None]]) -> None:
        """A keyframe, with the class and track of each object the light plan missed there (None: no track)."""
        self._keyframes.append(index)
        self._missed[index] = missed

    def seen(self, track_ids: Iterable[int]) -> None:
        """Tracks the light plan found on some frame (on a keyframe, by its own share of the search)."""
        self._seen.update(track_ids)

    def blind_intervals(self) -> dict[str, int]:
        """Per class, the keyframe intervals that begin and end with a blind find of that class."""
        blind = {k: {c for c, track in missed if track is None or track not in self._seen} for k, missed in self._missed.items()}
        intervals: Counter[str] = Counter()
        for before, after in zip(self._keyframes, self._keyframes[1:]):
            for object_class in blind[before] & blind[after]:
                intervals[ObjectClass(object_class).label] += 1
        return dict(intervals)
