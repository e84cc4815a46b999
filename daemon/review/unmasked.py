"""Review-band detections a profile left unmasked (``mask_review_band = false``): covered on the page.

The masked result in review/ then still shows those regions as they were filmed. The station never serves
them: it masks them again, on the fly, in every picture it sends (photo or video frame), with the profile's
mask style, and the page says per item how many regions that is and why. Publishing them unmasked takes an
explicit decision of the reviewer (daemon/review/rework/decision.py).

Photo: the sidecar's detections with ``band = "review"`` and ``masked = false``. Video: the raw detections
of the boxes companion scored in the review band; a detection on frame N stands for the frames up to the next
detected one, so it is covered on the frames within one detection stride either side.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from pipeline.mask import apply_masks, region_box
from pipeline.params import MaskParams, Params
from pipeline.records import MaskRegion, ObjectClass

from daemon.review.rework import Item

Box = tuple[float, float, float, float]


def item_params(item: Item) -> Params | None:
    """The parameters the item was rendered with (its sidecar's), or None when they cannot be read back."""
    try:
        return Params.model_validate(item.report.params)
    except ValidationError:
        return None


def leaves_band_unmasked(item: Item) -> bool:
    params = item_params(item)
    return params is None or not params.mask.mask_review_band


@dataclass
class Unmasked:
    """The regions of one item to cover, by frame (a photo is frame 0)."""

    count: int = 0  # review-band detections left unmasked (a video: detections over all its frames)
    frames: int = 0  # frames with at least one (a photo: 0 or 1)
    mask: MaskParams = field(default_factory=MaskParams)
    boxes: dict[int, list[tuple[Box, int]]] = field(default_factory=lambda: defaultdict(list))  # frame -> (box, class)

    def statement(self) -> str | None:
        """The page's sentence, or None when there is nothing to cover."""
        if not self.count:
            return None
        where = f" on {self.frames} frame(s)" if self.frames > 1 else ""
        return (f"{self.count} review-band detection(s){where} were left unmasked by this profile "
                "(mask_review_band = false). They are masked on this page only; publishing them unmasked needs "
                "your explicit decision, which the audit log records.")

    def cover(self, rgb: np.ndarray, frame: int) -> np.ndarray:
        """``rgb`` with this frame's regions masked (a copy; the input is left alone)."""
        rows = self.boxes.get(frame)
        if not rows:
            return rgb
        shape = rgb.shape
        regions = [MaskRegion(region_box(box, ObjectClass(cls), self.mask, shape), ObjectClass(cls), 0.0)
                   for box, cls in rows]
        return apply_masks(rgb.copy(), regions, self.mask)


def photo_unmasked(item: Item) -> Unmasked:
    params = item_params(item)
    found = Unmasked(mask=params.mask if params else MaskParams())
    for record in item.report.detections:
        if record.band == "review" and not record.masked:
            found.boxes[0].append((record.box, int(ObjectClass.from_label(record.object_class))))
            found.count += 1
    found.frames = 1 if found.count else 0
    return found


def video_unmasked(item: Item, rows) -> Unmasked:
    """From the companion's frame records ``rows`` (dicts with ``f`` and ``det``)."""
    params = item_params(item)
    found = Unmasked(mask=params.mask if params else MaskParams())
    if params is not None and params.mask.mask_review_band:
        return found
    reach = max(1, int((item.report.video or {}).get("detect_stride") or 1))
    for record in rows:
        frame, hits = record.get("f"), []
        for x1, y1, x2, y2, cls, score in record.get("det", []):
            bounds = params.detector.thresholds(ObjectClass(int(cls))) if params else None
            if bounds is None or bounds.review_floor <= score < bounds.threshold:
                hits.append(((x1, y1, x2, y2), int(cls)))
        if frame is None or not hits:
            continue
        found.count += len(hits)
        found.frames += 1
        for near in range(max(0, frame - reach + 1), frame + reach):
            found.boxes[near].extend(hits)
    return found
