"""ByteTrack-style association, run separately for each object class.

Every frame: predict each track with its Kalman filter; match high-score detections to all tracks (live
and lost) by IoU, then the leftovers by centre distance (fast motion, detection stride); match the low-score detections to the live tracks left over; start a track from each unmatched
high-score detection, and from each unmatched low-score one that touches the frame's edge when the class's
bands allow it; drop tracks lost for longer than ``lost_frames``. The tracker only *adds*
knowledge: it never removes a detection (the mask plan masks raw detections whatever the tracker says).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.params import TrackerParams
from pipeline.records import Detections, box4
from pipeline.track import kalman
from pipeline.track.matching import assign, centre_similarity, iou_matrix

EDGE_MARGIN = 0.02  # a box this close to the frame's border (share of its shorter side) touches the edge


def touches_edge(box: np.ndarray | tuple[float, ...], width: int, height: int) -> bool:
    """Whether a box reaches within ``EDGE_MARGIN`` of the frame's border (or past it)."""
    margin = EDGE_MARGIN * min(width, height)
    return bool(box[0] <= margin or box[1] <= margin or box[2] >= width - margin or box[3] >= height - margin)


@dataclass(frozen=True)
class TrackObservation:
    """Where a track is on one frame: the matched detection's box, or the Kalman prediction if unmatched."""

    track_id: int
    object_class: int
    box: tuple[float, float, float, float]
    score: float  # the matched detection's score; the track's last score when predicted
    matched: bool
    detection_index: int | None  # index into the frame's detections when matched
    at_edge: bool = False  # last seen touching the frame's edge (see TrackerParams.edge_lost_frames)
    # Matched on its class's last search at a confident score, found on two searches or more, away from the
    # frame's edge, moving slowly on its own (TrackerParams.settled_speed): the look-ahead's interpolation
    # will place it between searches.
    settled: bool = False


@dataclass
class _Track:
    track_id: int
    object_class: int
    mean: np.ndarray
    cov: np.ndarray
    score: float
    last_matched: int  # frame index
    lost: bool = False
    at_edge: bool = False
    hits: int = 1  # searches that found it, its birth included

    def box(self) -> np.ndarray:
        return kalman.xywh_to_xyxy(self.mean)


@dataclass(frozen=True)
class ScoreBands:
    """Per class: ``high`` starts and first-stage-matches tracks, ``low`` and up extends them. ``edge_start``
    (None: ``high``): a detection from this score up that touches the frame's edge starts a track too, because
    a face cut by the edge scores low, and its track is what masks it until it has left."""

    high: float
    low: float
    edge_start: float | None = None


class ByteTracker:
    def __init__(self, params: TrackerParams, bands: dict[int, ScoreBands], frame_size: tuple[int, int] | None = None) -> None:
        """``frame_size`` (width, height): without it no track counts as at the edge."""
        self.params = params
        self.bands = bands
        self.frame_size = frame_size
        self._tracks: list[_Track] = []
        self._next_id = 1  # per tracker instance: ids restart for every video
        self._last_frame: int | None = None

    def step(
        self, frame_index: int, dets: Detections | None, camera: np.ndarray | None = None,
        searched: frozenset[int] | None = None,
    ) -> list[TrackObservation]:
        """Advance to ``frame_index``. ``dets`` None means the frame was not run through the detector
        (detection stride): tracks are only predicted, and nobody counts as lost for it. ``searched``: the
        classes the detector looked for on this frame (None: all); tracks of the others are only predicted,
        as on a skipped frame. ``camera``: the 2x3 transform from the previous frame's pixels to this one's,
        applied to every track first."""
        steps = 1 if self._last_frame is None else max(1, frame_index - self._last_frame)
        self._last_frame = frame_index
        for track in self._tracks:
            if camera is not None:
                track.mean, track.cov = kalman.warp(track.mean, track.cov, camera)
            track.mean, track.cov = kalman.predict(track.mean, track.cov, steps)
        if dets is None:
            return [self._observe(t, None, None) for t in self._tracks]

        observations: list[TrackObservation] = []
        born: list[_Track] = []
        for object_class in sorted({t.object_class for t in self._tracks} | {int(c) for c in dets.classes}):
            if searched is None or object_class in searched:
                observations += self._associate(frame_index, object_class, dets, born)
            else:
                observations += [self._observe(t, None, None) for t in self._tracks if t.object_class == object_class]
        self._tracks = [t for t in self._tracks if self._kept(t, frame_index)]
        self._tracks += born
        alive = {t.track_id for t in self._tracks}
        return [o for o in observations if o.track_id in alive]

    def _associate(self, frame_index: int, object_class: int, dets: Detections, born: list[_Track]) -> list[TrackObservation]:
        band = self._band(object_class)
        in_class = np.flatnonzero(dets.classes == object_class)
        high = in_class[dets.scores[in_class] >= band.high]
        low = in_class[(dets.scores[in_class] < band.high) & (dets.scores[in_class] >= band.low)]
        tracks = [t for t in self._tracks if t.object_class == object_class]
        track_boxes = np.array([t.box() for t in tracks]).reshape(-1, 4)

        observations = []
        pairs, free_tracks, free_high = assign(iou_matrix(track_boxes, dets.boxes[high]), self.params.match_iou)
        for ti, di in pairs:
            observations.append(self._match(tracks[ti], frame_index, dets, int(high[di])))
        # Only a track found on its class's last search is chased far: one that missed it has lost its object,
        # and a face found far from it is more likely another, whose own new track is back-filled.
        chasing = [ti for ti in free_tracks if not tracks[ti].lost]
        if self.params.centre_gate > 0 and chasing and free_high:
            gaps = np.array([frame_index - tracks[ti].last_matched for ti in chasing])
            near = centre_similarity(track_boxes[chasing], dets.boxes[high[free_high]], self.params.centre_gate * np.sqrt(gaps))
            pairs_far, _, _ = assign(near, 1e-6)
            for ri, ci in pairs_far:
                observations.append(self._match(tracks[chasing[ri]], frame_index, dets, int(high[free_high[ci]])))
            taken_t = {chasing[ri] for ri, _ in pairs_far}
            taken_d = {free_high[ci] for _, ci in pairs_far}
            free_tracks = [ti for ti in free_tracks if ti not in taken_t]
            free_high = [di for di in free_high if di not in taken_d]

        live_left = [ti for ti in free_tracks if not tracks[ti].lost]
        pairs_low, _, free_low = assign(iou_matrix(track_boxes[live_left], dets.boxes[low]), self.params.low_match_iou)
        matched_low = set()
        for li, di in pairs_low:
            ti = live_left[li]
            matched_low.add(ti)
            observations.append(self._match(tracks[ti], frame_index, dets, int(low[di])))

        for ti in free_tracks:
            if ti in matched_low:
                continue
            tracks[ti].lost = True
            observations.append(self._observe(tracks[ti], None, None))

        edge_start = band.high if band.edge_start is None else band.edge_start
        starters = [int(high[di]) for di in free_high] + [
            int(low[di]) for di in free_low
            if dets.scores[low[di]] >= edge_start and self._touches_edge(dets.boxes[low[di]])]
        for index in starters:
            mean, cov = kalman.initiate(dets.boxes[index])
            track = _Track(self._next_id, object_class, mean, cov, float(dets.scores[index]), frame_index,
                           at_edge=self._touches_edge(dets.boxes[index]))
            self._next_id += 1
            born.append(track)
            observations.append(self._observe(track, dets, index))
        return observations

    def _match(self, track: _Track, frame_index: int, dets: Detections, index: int) -> TrackObservation:
        track.mean, track.cov = kalman.update(track.mean, track.cov, dets.boxes[index])
        track.score = float(dets.scores[index])
        track.last_matched = frame_index
        track.lost = False
        track.hits += 1
        track.at_edge = self._touches_edge(dets.boxes[index])
        return self._observe(track, dets, index)

    def _band(self, object_class: int) -> ScoreBands:
        return self.bands.get(object_class, ScoreBands(high=0.5, low=0.1))

    def _kept(self, track: _Track, frame_index: int) -> bool:
        unseen = frame_index - track.last_matched
        if unseen <= self.params.lost_frames:
            return True
        return track.at_edge and unseen <= self.params.edge_lost_frames and self._in_frame(track.box())

    def _touches_edge(self, box: np.ndarray) -> bool:
        if self.frame_size is None:
            return False
        return touches_edge(box, *self.frame_size)

    def _in_frame(self, box: np.ndarray) -> bool:
        width, height = self.frame_size or (0, 0)
        return bool(box[2] > 0 and box[3] > 0 and box[0] < width and box[1] < height)

    def _observe(self, track: _Track, dets: Detections | None, index: int | None) -> TrackObservation:
        band = self._band(track.object_class)
        speed = float(np.hypot(track.mean[4], track.mean[5])) / max(track.mean[2], track.mean[3], 1.0)  # own motion
        settled = (not track.lost and track.hits >= 2 and track.score >= band.high and not track.at_edge
                   and speed <= self.params.settled_speed)
        if dets is not None and index is not None:
            box = box4(dets.boxes[index])  # the detection itself, not the smoothed state
            return TrackObservation(track.track_id, track.object_class, box, float(dets.scores[index]), True, index,
                                    track.at_edge, settled)
        box = box4(track.box())
        return TrackObservation(track.track_id, track.object_class, box, track.score, False, None, track.at_edge, settled)
