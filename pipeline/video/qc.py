"""The video part of the QC sidecar (``QCReport.video``) and the per-frame boxes companion file.

The sidecar holds a summary: tracks, gaps, decode warnings. Per-frame boxes, which can run to millions of
entries for a long video, go in ``<output name>.boxes.jsonl.gz`` beside the output: one JSON object a line,
a header first, then one line per frame, then a closing line with the frame count.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.records import MaskRegion, ObjectClass
from pipeline.video.plan import FramePlan

BOXES_SCHEMA = "veil.boxes/1"
BOXES_SUFFIX = ".boxes.jsonl.gz"
MAX_LISTED = 200  # frame lists and warnings in the sidecar are cut here; the counts stay exact


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrackSummary(_Model):
    id: int
    object_class: str = Field(alias="class")
    first_frame: int
    last_frame: int
    detected_frames: int
    min_score: float
    max_score: float
    filled: dict[str, int]  # frames masked without a detection of their own, by how: interpolated, predicted, ...

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class VideoSummary(_Model):
    container: str
    codec_in: str
    codec_out: str
    width: int
    height: int
    rotation: int
    frames_declared: int | None
    frames_decoded: int
    frames_written: int
    frames_detected: int  # frames the detector ran on (detection stride)
    detect_stride: int
    duration_in_s: float | None
    audio_streams: list[str]  # codecs copied unchanged
    dropped_streams: list[str]
    tracks: list[TrackSummary]
    untracked_detections: int  # raw detections masked that joined no track (mostly the low-score band)
    detection_gaps: int  # detected frames with nothing found while the detected frames either side had something
    detection_gap_frames: list[int]
    review_band_frames: dict[str, int]  # per class, frames with a review-band detection
    decode_warnings: list[str]
    decode_warning_count: int
    corrupt_frames: list[int]
    # Busy seconds per stage (decode, detect, motion, plan, mask, encode); stages overlap on threads, so
    # they sum to more than the wall time. For capacity planning: the largest one is the bottleneck.
    stage_seconds: dict[str, float] = {}


def region_row(region: MaskRegion, track_id: int | None) -> list[Any]:
    x1, y1, x2, y2 = region.box
    return [round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1), int(region.object_class),
            round(region.score, 3), -1 if track_id is None else track_id, region.source]


class BoxesWriter:
    """Writes the companion: per frame the raw detections, the track boxes and the regions as masked."""

    def __init__(self, path: Path, *, width: int, height: int, time_base: str, rate: str | None) -> None:
        self._file: IO[str] = gzip.open(path, "wt", encoding="utf-8", compresslevel=6)
        self._frames = 0
        self._line({"schema": BOXES_SCHEMA, "width": width, "height": height, "time_base": time_base, "rate": rate,
                    "fields": {"det": "x1 y1 x2 y2 class score", "trk": "id class x1 y1 x2 y2 source",
                               "mask": "x1 y1 x2 y2 class score track source"}})

    def _line(self, obj: dict) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def frame(self, plan: FramePlan, pts: int, regions: list[tuple[MaskRegion, int | None]]) -> None:
        d = plan.detections
        self._line({
            "f": plan.index,
            "pts": pts,
            "detected": plan.detected,
            "det": [[*(round(float(v), 1) for v in b), int(c), round(float(s), 3)] for b, s, c in zip(d.boxes, d.scores, d.classes)],
            "trk": [[t.track_id, t.object_class, *(round(v, 1) for v in t.box), t.source] for t in plan.tracks],
            "mask": [region_row(r, tid) for r, tid in regions],
        })
        self._frames += 1

    def close(self) -> None:
        self._line({"end": True, "frames": self._frames})
        self._file.close()


def read_boxes(path: Path) -> Iterator[dict[str, Any]]:
    """Yield (header, frames...) from a companion file: the header dict first, then one dict per frame."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("end"):
                return
            yield record


def class_label(value: int) -> str:
    return ObjectClass(value).label
