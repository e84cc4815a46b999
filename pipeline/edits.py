"""What a person adds to or removes from the automatic masks: always-masked polygons and suppressions.

Coordinates are relative (x / width, y / height, each in [0, 1]), so one zone fits every resolution of a
camera. Frame ranges are inclusive; an image is frame 0. An add polygon masks every pixel it touches, in the
profile's style (pipeline/mask.py), with a strength relative to the polygon's bounding box. A suppression
drops the detection and track regions whose box centre lies inside its polygon.

Configuration and sidecars are the boundaries (pydantic); in here everything is frozen dataclasses. What
each edit did on one file (frames masked, detections suppressed) is counted in an ``EditCounts``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from pipeline.mask import apply_footprint
from pipeline.params import MaskParams
from pipeline.records import MaskRegion

Point = tuple[float, float]  # relative x, y in [0, 1]
FrameRange = tuple[int, int]  # first and last frame, both included

# Regions a person placed on purpose are never suppressed by another edit.
_UNSUPPRESSIBLE = frozenset({"manual", "zone"})
_SUBPIXEL_BITS = 4  # cv2 fixed-point vertices: a sixteenth of a pixel
# A pixel square's corners around its centre, grown by an eighth of a pixel: cv2's fixed-point fill may
# leave out a pixel whose square the polygon only just reaches, and a privacy mask errs on the wide side.
_PIXEL_CORNERS = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * 1.25


def box_polygon(x1: float, y1: float, x2: float, y2: float) -> tuple[Point, ...]:
    """A relative box as the polygon of its four corners, clockwise from the top left."""
    return ((x1, y1), (x2, y1), (x2, y2), (x1, y2))


def _checked_polygon(polygon: Any) -> tuple[Point, ...]:
    points = tuple((float(x), float(y)) for x, y in polygon)
    if len(points) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(points)}")
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):  # also refuses NaN
            raise ValueError(
                f"polygon point ({x}, {y}) is outside the picture: coordinates are relative, each in [0, 1]"
            )
    if cv2.contourArea(np.array(points, dtype=np.float64).astype(np.float32)) <= 0.0:
        raise ValueError("the polygon has no area (its points are on one line)")
    return points


def _checked_frames(frames: Any) -> FrameRange | None:
    if frames is None:
        return None
    first, last = (int(f) for f in frames)
    if first < 0 or last < first:
        raise ValueError(f"frame range {first}..{last} must satisfy 0 <= first <= last")
    return (first, last)


def _active(frames: FrameRange | None, frame: int) -> bool:
    return frames is None or frames[0] <= frame <= frames[1]


@dataclass(frozen=True)
class AddRegion:
    """A polygon that is always masked: a privacy zone or a reviewer's region."""

    polygon: tuple[Point, ...]
    frames: FrameRange | None = None  # None: every frame (images are frame 0)
    origin: str = "manual"  # "zone:<name>" | "manual"
    object_class: str | None = None  # optional label for the sidecar: "face", "license_plate", "other"

    def __post_init__(self) -> None:
        object.__setattr__(self, "polygon", _checked_polygon(self.polygon))
        object.__setattr__(self, "frames", _checked_frames(self.frames))


@dataclass(frozen=True)
class Suppression:
    """Detections whose box centre lies inside the polygon are not masked."""

    polygon: tuple[Point, ...]
    frames: FrameRange | None = None
    origin: str = "false-positive"  # "ignore-zone:<name>" | "false-positive"

    def __post_init__(self) -> None:
        object.__setattr__(self, "polygon", _checked_polygon(self.polygon))
        object.__setattr__(self, "frames", _checked_frames(self.frames))


@dataclass
class EditCounts:
    """What each edit did on one file, by its position in ``Edits.add`` / ``Edits.suppress``."""

    frames_masked: Counter[int] = field(default_factory=Counter)
    detections_suppressed: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True)
class Edits:
    add: tuple[AddRegion, ...] = ()
    suppress: tuple[Suppression, ...] = ()

    def merged(self, other: "Edits") -> "Edits":
        """These edits followed by ``other``'s (the source's zones, then a reviewer's edits)."""
        return Edits(self.add + other.add, self.suppress + other.suppress)

    def is_empty(self) -> bool:
        return not self.add and not self.suppress

    def suppresses(self, region: MaskRegion, shape: tuple[int, ...], frame: int, counts: EditCounts | None = None) -> bool:
        """Whether an active suppression covers this region's box centre (counted in ``counts`` if so)."""
        if not self.suppress or region.source in _UNSUPPRESSIBLE:
            return False
        height, width = shape[:2]
        x1, y1, x2, y2 = region.box
        centre = ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height)
        for index, suppression in enumerate(self.suppress):
            if _active(suppression.frames, frame) and _contains(suppression.polygon, centre):
                if counts is not None:
                    counts.detections_suppressed[index] += 1
                return True
        return False

    def filter_regions(
        self, regions: list[MaskRegion], shape: tuple[int, ...], frame: int, counts: EditCounts | None = None
    ) -> tuple[list[MaskRegion], int]:
        """Drop regions (detection/track regions) whose box centre lies in an active suppression polygon;
        returns the kept regions and how many were dropped."""
        kept = [region for region in regions if not self.suppresses(region, shape, frame, counts)]
        return kept, len(regions) - len(kept)

    def apply_adds(
        self, image: np.ndarray, frame: int, mask_params: MaskParams, counts: EditCounts | None = None
    ) -> int:
        """Mask (in place, in the configured style) every add polygon active on this frame; returns how many.
        ``counts``: count them too (``count_adds``)."""
        applied = 0
        for region in self.add:
            if not _active(region.frames, frame):
                continue
            bounds, footprint = polygon_footprint(region.polygon, image.shape[0], image.shape[1])
            if footprint.any():
                apply_footprint(image, bounds, footprint, mask_params)
            applied += 1
        if counts is not None:
            self.count_adds(frame, counts)
        return applied

    def count_adds(self, frame: int, counts: EditCounts) -> None:
        """Count the add polygons active on this frame, as masked there (video frames are painted on
        several threads; the counting stays on one)."""
        for index, region in enumerate(self.add):
            if _active(region.frames, frame):
                counts.frames_masked[index] += 1

    def cover_adds(self, covered: np.ndarray, frame: int) -> None:
        """Mark, in the boolean map ``covered``, every pixel the adds active on this frame mask."""
        for region in self.add:
            if _active(region.frames, frame):
                (x0, y0, x1, y1), footprint = polygon_footprint(region.polygon, covered.shape[0], covered.shape[1])
                covered[y0:y1, x0:x1] |= footprint

    def summary(self, counts: EditCounts | None = None) -> list[dict]:
        """A JSON-able record of every edit, for the sidecar; with what each did when ``counts`` is given."""
        records: list[dict] = []
        for index, region in enumerate(self.add):
            record: dict[str, Any] = {"kind": "add", "origin": region.origin, "polygon": [list(p) for p in region.polygon],
                      "frames": list(region.frames) if region.frames else None, "object_class": region.object_class}
            if counts is not None:
                record["frames_masked"] = counts.frames_masked[index]
            records.append(record)
        for index, suppression in enumerate(self.suppress):
            record = {"kind": "suppress", "origin": suppression.origin,
                      "polygon": [list(p) for p in suppression.polygon],
                      "frames": list(suppression.frames) if suppression.frames else None}
            if counts is not None:
                record["detections_suppressed"] = counts.detections_suppressed[index]
            records.append(record)
        return records


def _contains(polygon: tuple[Point, ...], point: Point) -> bool:
    return cv2.pointPolygonTest(np.array(polygon, dtype=np.float32), point, False) >= 0


@lru_cache(maxsize=32)  # a video, or a camera's photos, rasterise the same zone at the same size again and again
def polygon_footprint(polygon: tuple[Point, ...], height: int, width: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Every pixel the polygon touches: the bounding rectangle (x0, y0, x1, y1) and a boolean map of it.

    A pixel is touched when its square meets the polygon, that is when its centre lies in the polygon grown
    by half a pixel on every side: the polygon itself plus, along each edge, the edge swept by a pixel square.
    cv2's fixed-point fill can leave a sliver thinner than an eighth of a pixel (tested to that bound).
    """
    centres = np.array(polygon, dtype=np.float64) * (width, height) - 0.5  # cv2 puts pixel centres on integers
    canvas = np.zeros((height, width), dtype=np.uint8)
    scale = 1 << _SUBPIXEL_BITS
    cv2.fillPoly(canvas, [np.round(centres * scale).astype(np.int32)], 1, cv2.LINE_8, shift=_SUBPIXEL_BITS)
    for start, end in zip(centres, np.roll(centres, -1, axis=0)):
        swept = np.concatenate([start + _PIXEL_CORNERS, end + _PIXEL_CORNERS])
        hull = cv2.convexHull(np.round(swept * scale).astype(np.int32))
        cv2.fillConvexPoly(canvas, hull, 1, cv2.LINE_8, shift=_SUBPIXEL_BITS)
    ys, xs = np.nonzero(canvas)
    if not len(xs):
        return (0, 0, 0, 0), np.zeros((0, 0), dtype=bool)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    footprint = canvas[y0:y1, x0:x1].astype(bool)
    footprint.flags.writeable = False  # shared through the cache
    return (x0, y0, x1, y1), footprint
