"""The per-frame boxes companion file of a video, and how much of a video's lists the sidecar keeps.

The sidecar holds a summary (``pipeline.qc.VideoSummary``): tracks, gaps, decode warnings. Per-frame boxes,
which can run to millions of entries for a long video, go in ``<output name>.boxes.jsonl.gz`` beside the
output: one JSON object a line, a header first, then one line per frame, then a closing line with the frame
count.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pipeline.records import MaskRegion, ObjectClass
from pipeline.video.plan import FramePlan

BOXES_SCHEMA = "veil.boxes/1"
BOXES_SUFFIX = ".boxes.jsonl.gz"
MAX_LISTED = 200  # frame lists and warnings in the sidecar are cut here; the counts stay exact


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
