"""What gets masked on each video frame, decided with a look-ahead buffer.

Frames enter in order with their detections (or None on frames the detection stride skips). A frame
leaves the planner ``lookahead_frames`` later, when the future it needs is known. Its mask is the union of

- its own raw detections (the tracker never removes one), and
- for every track near it: the track's box on that frame, which is the matched detection, a linear
  interpolation across a gap (the track was found again later), the Kalman prediction just after the
  track was lost, or a back-fill before the track's first detection (extrapolated backwards from its first
  motion, so an object that was visible but missed before frame N is masked too), grown to the hull of
  the track's boxes ``temporal_dilation`` frames either side, so a mask runs ahead of fast motion.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from pipeline.mask import confident_and_review
from pipeline.params import DetectorParams, VideoParams
from pipeline.records import Detections, ObjectClass, box4
from pipeline.track.bytetrack import ByteTracker, ScoreBands, TrackObservation
from pipeline.track.motion import invert, warp_boxes

# Where a planned box came from. "detection": matched on that very frame.
# "dilation": no box of its own on that frame, only a neighbour's within ``temporal_dilation``.
SOURCES = ("detection", "interpolated", "predicted", "backfill", "dilation")
BACKFILL_GROWTH = 0.03  # per frame back from the first hit: the extrapolation grows less sure


@dataclass(frozen=True)
class TrackBox:
    track_id: int
    object_class: int
    box: tuple[float, float, float, float]  # the track's own box on this frame: no margin, maybe past the edges
    hull: tuple[float, float, float, float]  # the box joined with its neighbours' (temporal dilation): masked
    score: float
    source: str  # one of SOURCES, for the frame's own box


@dataclass(frozen=True)
class FramePlan:
    index: int
    detected: bool  # the detector ran on this frame (detection stride)
    detections: Detections  # raw detections of this frame (empty when not detected)
    tracks: tuple[TrackBox, ...]
    detection_gap: bool  # detected, found nothing, while the detected frames either side found something


@dataclass
class TrackStats:
    """A track's life, summed as its frames leave the planner (for the QC sidecar)."""

    track_id: int
    object_class: int
    first_frame: int
    last_frame: int
    min_score: float
    max_score: float
    filled: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SOURCES[1:]})
    detected_frames: int = 0


@dataclass
class _History:
    object_class: int
    detected: list[int] = field(default_factory=list)  # frame indexes with a matched detection, ascending
    boxes: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> box, detected frames
    scores: dict[int, float] = field(default_factory=dict)
    predicted: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> Kalman box, unmatched frames
    at_edge: bool = False  # last seen touching the frame's edge: its prediction is masked for longer
    # (detected frame, frame) -> that detection's box carried along the camera's motion to the frame. A frame's
    # box is asked for again as its neighbours' dilation, and each carry extends the one a frame shorter.
    carried: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    # (frame, first detected frame, the later one its motion is taken from) -> the backfilled box: asked for
    # again as the neighbours' dilation, and each is a carry of up to ``backfill_frames`` steps.
    backfilled: dict[tuple[int, int, int | None], np.ndarray] = field(default_factory=dict)


@dataclass
class _Pending:
    index: int
    detections: Detections | None
    roi: Detections | None = None  # re-detections around tracks on a frame the stride skipped


def score_bands(detector: DetectorParams, mask_review_band: bool = True) -> dict[int, ScoreBands]:
    """The tracker's bands per class. Where review-band detections are masked, one touching the frame's edge
    starts a track: a face leaving (or entering) is cut by the edge, scores low, and would otherwise be masked
    only on the frames where the detector still finds it."""
    bands = {}
    for object_class in ObjectClass:
        bounds = detector.thresholds(object_class)
        edge_start = bounds.review_floor if mask_review_band else bounds.threshold
        bands[int(object_class)] = ScoreBands(high=bounds.threshold, low=bounds.review_floor, edge_start=edge_start)
    return bands


class MaskPlanner:
    def __init__(self, video: VideoParams, detector: DetectorParams, frame_size: tuple[int, int] | None = None,
                 *, mask_review_band: bool = True) -> None:
        """``frame_size`` (width, height): lets tracks leaving through the frame's edge be masked until gone.
        ``mask_review_band``: the profile masks review-band detections (see ``score_bands``)."""
        self.params = video
        self.detector = detector
        self.tracker = ByteTracker(video.tracker, score_bands(detector, mask_review_band), frame_size)
        self._pending: deque[_Pending] = deque()
        self._history: dict[int, _History] = {}
        self._detect_counts: dict[int, int] = {}  # detected frame -> number of detections, recent frames only
        self.stats: dict[int, TrackStats] = {}
        self._camera: dict[int, np.ndarray] = {}  # frame -> transform from the frame before; recent frames only
        self._inverse: dict[int, np.ndarray] = {}  # frame -> the inverse of its transform, once asked for
        self._latest = -1
        self.current: list[TrackObservation] = []  # where every track is on the latest frame pushed

    def push(
        self, index: int, detections: Detections | None, camera: np.ndarray | None = None,
        searched: frozenset[int] | None = None,
    ) -> list[FramePlan]:
        """Add the next frame; return the frames that are now ready, oldest first. ``camera``: the 2x3
        transform from the previous frame's pixels to this one's (None: a still camera). ``searched``: the
        classes the detector looked for (None: all of them)."""
        if index != self._latest + 1:
            raise ValueError(f"frames must come in order: expected {self._latest + 1}, got {index}")
        self._latest = index
        if camera is not None:
            self._camera[index] = np.asarray(camera, dtype=np.float64)
        if detections is not None and searched is None:  # detection gaps are judged on fully searched frames
            self._detect_counts[index] = len(detections)
        self.current = self.tracker.step(index, detections, camera, searched)
        for observation in self.current:
            self._record(index, observation)
        self._pending.append(_Pending(index, detections))
        ready = []
        while len(self._pending) > self.params.lookahead_frames:
            ready.append(self._emit(self._pending.popleft()))
        return ready

    def add_roi(self, index: int, detections: Detections) -> None:
        """Re-detections around the tracks on the latest frame, for the classes the stride skipped there. They
        are masked on that frame as raw detections are, on top of the tracks' own boxes; the tracker does not
        use them, so a partial search never marks a track lost."""
        pending = self._pending[-1] if self._pending else None
        if pending is None or pending.index != index or pending.roi is not None:
            raise ValueError(f"re-detections for frame {index} must follow its push, once")
        pending.roi = detections

    def finish(self) -> list[FramePlan]:
        ready = [self._emit(p) for p in self._pending]
        self._pending.clear()
        return ready

    @property
    def buffered(self) -> int:
        return len(self._pending)

    def _record(self, index: int, observation: TrackObservation) -> None:
        history = self._history.setdefault(observation.track_id, _History(observation.object_class))
        history.at_edge = observation.at_edge
        box = np.array(observation.box, dtype=np.float64)
        if observation.matched:
            history.detected.append(index)
            history.boxes[index] = box
            history.scores[index] = observation.score
        else:
            history.predicted[index] = box

    def _emit(self, pending: _Pending) -> FramePlan:
        index = pending.index
        tracks = []
        for track_id, history in self._history.items():
            own = self._box_at(history, index)
            around = [self._box_at(history, index + d) for d in range(-self.params.temporal_dilation, self.params.temporal_dilation + 1) if d]
            boxes = [b for b in [own, *around] if b is not None]
            if own is None and not boxes:
                continue
            if own is None:
                # Only a neighbour's box reaches this frame (e.g. the frame after a track ends): still mask it.
                own = (boxes[0][0], "dilation", boxes[0][2])
            hull = np.concatenate([np.min([b[0][:2] for b in boxes], axis=0), np.max([b[0][2:] for b in boxes], axis=0)])
            tracks.append(TrackBox(track_id, history.object_class, box4(own[0]), box4(hull), own[2], own[1]))
            self._count(track_id, history, index, own)
        detections = Detections.concat([d for d in (pending.detections, pending.roi) if d is not None])
        plan = FramePlan(index, pending.detections is not None, detections, tuple(tracks), self._is_gap(pending))
        self._prune(index)
        return plan

    def _box_at(self, history: _History, frame: int) -> tuple[np.ndarray, str, float] | None:
        if frame < 0 or frame > self._latest:
            return None
        if frame in history.boxes:
            return history.boxes[frame], "detection", history.scores[frame]
        if not history.detected:
            return None
        at = bisect.bisect_left(history.detected, frame)
        before = history.detected[at - 1] if at > 0 else None
        after = history.detected[at] if at < len(history.detected) else None
        if before is not None and after is not None:
            # Both ends carried to this frame along the camera's motion, then blended: exact for a still
            # object under a panning camera, linear in the object's own motion.
            t = (frame - before) / (after - before)
            box = (1 - t) * self._carried(history, before, frame) + t * self._carried(history, after, frame)
            return box, "interpolated", min(history.scores[before], history.scores[after])
        if before is not None:
            limit = max(self.params.lost_mask_frames, self.params.tracker.edge_lost_frames if history.at_edge else 0)
            if frame - before <= limit and frame in history.predicted:
                return history.predicted[frame], "predicted", history.scores[before]
            return None
        if after is not None and after - frame <= self.params.backfill_frames:
            return self._backfill(history, after, frame), "backfill", history.scores[after]
        return None

    def _carried(self, history: _History, start: int, end: int) -> np.ndarray:
        """``_carry`` of the detection on frame ``start`` to frame ``end``, one frame at a time and remembered:
        the same arithmetic in the same order, so the same box."""
        step = 1 if end >= start else -1
        reached, box = start, history.boxes[start]
        for frame in range(end, start, -step):  # the longest carry already made
            if (start, frame) in history.carried:
                reached, box = frame, history.carried[(start, frame)]
                break
        for frame in range(reached + step, end + step, step):
            box = self._carry(box, frame - step, frame)
            history.carried[(start, frame)] = box
        return box

    def _carry(self, box: np.ndarray, start: int, end: int) -> np.ndarray:
        """Move a box seen on frame ``start`` to frame ``end`` along the camera's motion (either way)."""
        for frame in range(start + 1, end + 1):  # forwards
            if frame in self._camera:
                box = warp_boxes(box, self._camera[frame])[0]
        for frame in range(start, end, -1):  # backwards
            if frame in self._camera:
                if frame not in self._inverse:
                    self._inverse[frame] = invert(self._camera[frame])
                box = warp_boxes(box, self._inverse[frame])[0]
        return box

    def _backfill(self, history: _History, first: int, frame: int) -> np.ndarray:
        """The box ``first - frame`` frames before the first hit: carried back along the camera's motion,
        and along the object's own first observed motion (relative to the scene)."""
        later = [f for f in history.detected[1:4] if f > first]
        key = (frame, first, later[-1] if later else None)  # all it depends on: those frames' boxes never change
        if key not in history.backfilled:
            history.backfilled[key] = self._backfilled(history, *key)
        return history.backfilled[key]

    def _backfilled(self, history: _History, frame: int, first: int, later: int | None) -> np.ndarray:
        """``_backfill``, its object's own motion taken from the detections on ``first`` and ``later``."""
        velocity = np.zeros(4)
        if later is not None:
            expected = self._carried(history, first, later)  # where the camera alone takes it
            velocity = (history.boxes[later] - expected) / (later - first)
        back = first - frame
        box = self._carry(history.boxes[first] - velocity * back, first, frame)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        half_w = (box[2] - box[0]) / 2 * (1 + BACKFILL_GROWTH * back)
        half_h = (box[3] - box[1]) / 2 * (1 + BACKFILL_GROWTH * back)
        return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])

    def _count(self, track_id: int, history: _History, index: int, own: tuple[np.ndarray, str, float]) -> None:
        stats = self.stats.get(track_id)
        score = own[2]
        if stats is None:
            stats = self.stats[track_id] = TrackStats(track_id, history.object_class, index, index, score, score)
        stats.last_frame = index
        if own[1] == "detection":
            stats.detected_frames += 1
            stats.min_score = min(stats.min_score, score)
            stats.max_score = max(stats.max_score, score)
        else:
            stats.filled[own[1]] = stats.filled.get(own[1], 0) + 1

    def _is_gap(self, pending: _Pending) -> bool:
        if pending.detections is None or len(pending.detections):
            return False
        detected = sorted(self._detect_counts)
        at = bisect.bisect_left(detected, pending.index)
        before = detected[at - 1] if at > 0 else None
        after = detected[at + 1] if at + 1 < len(detected) else None
        return bool(before is not None and after is not None and self._detect_counts[before] and self._detect_counts[after])

    def _prune(self, emitted: int) -> None:
        """Forget what no later frame can need, so memory stays bounded however long the video."""
        tracker = self.params.tracker
        keep_from = emitted - max(tracker.lost_frames, tracker.edge_lost_frames, self.params.lost_mask_frames) - self.params.temporal_dilation - 2
        for track_id in list(self._history):
            history = self._history[track_id]
            last = max([*history.detected[-1:], *history.predicted.keys()], default=-1)
            if last < keep_from:
                del self._history[track_id]
                continue
            # Keep the last detected frame before the window: interpolation across a gap needs it.
            cut = bisect.bisect_left(history.detected, keep_from)
            for frame in history.detected[: max(0, cut - 1)]:
                del history.boxes[frame], history.scores[frame]
            del history.detected[: max(0, cut - 1)]
            for frame in [f for f in history.predicted if f < keep_from]:
                del history.predicted[frame]
            for key in [k for k in history.carried if k[0] not in history.boxes or k[1] < keep_from]:
                del history.carried[key]
            for stale in [k for k in history.backfilled if k[0] < keep_from]:
                del history.backfilled[stale]
        for frame in [f for f in self._camera if f < keep_from - 1]:  # gaps are carried from their start
            del self._camera[frame]
            self._inverse.pop(frame, None)
        # The next frame to leave needs the last detected frame at or before this one, and those after.
        earlier = [f for f in self._detect_counts if f <= emitted]
        for frame in earlier[:-1]:
            del self._detect_counts[frame]


def review_band_count(plan: FramePlan, detector: DetectorParams) -> dict[str, int]:
    """Per class, how many of this frame's raw detections fell in the review band."""
    if not len(plan.detections):
        return {}
    _, review = confident_and_review(plan.detections, detector)
    counts = {}
    for object_class in ObjectClass:
        n = int((review & (plan.detections.classes == int(object_class))).sum())
        if n:
            counts[object_class.label] = n
    return counts
