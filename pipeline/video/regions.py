"""A video frame's regions to mask: its raw detections and its tracks' boxes, and the counts they add up to."""

from __future__ import annotations

from collections import Counter

import numpy as np

from pipeline.mask import plan_regions, region_box
from pipeline.params import Params
from pipeline.records import MaskRegion, ObjectClass
from pipeline.track.bytetrack import touches_edge
from pipeline.video.plan import FramePlan, review_band_count

# MaskRegion.source for each way a track box came about.
_REGION_SOURCE = {"interpolated": "interpolated"}


def frame_regions(plan: FramePlan, params: Params, shape: tuple[int, ...]) -> list[tuple[MaskRegion, int | None]]:
    """Every region to mask on this frame, each with the track it belongs to (None: a raw detection)."""
    height, width = shape[:2]

    def edge_margin(box: np.ndarray | tuple[float, ...]) -> float:
        return params.video.edge_margin if touches_edge(box, width, height) else 0.0

    regions: list[tuple[MaskRegion, int | None]] = [
        (r, None) for r in plan_regions(plan.detections, params, shape, edge_margin)]
    for track in plan.tracks:
        margin = params.video.track_margin + edge_margin(track.box)
        box = region_box(track.hull, ObjectClass(track.object_class), params.mask, shape, margin)
        if box[2] <= box[0] or box[3] <= box[1]:
            continue  # wholly outside the picture (a back-fill or prediction past the edge)
        source = _REGION_SOURCE.get(track.source, "track")
        regions.append((MaskRegion(box, ObjectClass(track.object_class), track.score, source), track.track_id))
    return regions


class RegionCounters:
    """Counts over one video's frames and their regions, for the QC summary."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.frames_written = 0
        self.frames_detected = 0
        self.untracked = 0
        self.gaps: list[int] = []
        self.review_frames: Counter[str] = Counter()
        self.masked_regions: Counter[str] = Counter()

    def account(self, plan: FramePlan, regions: list[tuple[MaskRegion, int | None]]) -> None:
        if plan.detected:
            self.frames_detected += 1
        if plan.detection_gap:
            self.gaps.append(plan.index)
        for label in review_band_count(plan, self.params.detector):
            self.review_frames[label] += 1
        if plan.detected:  # re-detections on skipped frames never join tracks: not counted as untracked
            raw = sum(1 for _, track_id in regions if track_id is None)
            matched = sum(1 for t in plan.tracks if t.source == "detection")  # each took one of the raw detections
            self.untracked += max(0, raw - matched)
        for region, _ in regions:
            self.masked_regions[region.object_class.label] += 1
