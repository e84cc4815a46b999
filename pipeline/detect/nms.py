"""Box geometry shared by the detector families: IoU, NMS and cross-scale merging."""

from __future__ import annotations

import numpy as np

from pipeline.records import Detections


def box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas, shape (len(a), len(b))."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def overlapping(a: np.ndarray, b: np.ndarray, share: float) -> np.ndarray:
    """Pairwise, shape (len(a), len(b)): whether the two boxes share at least ``share`` of the smaller one's area."""
    smaller = np.minimum(box_area(a)[:, None], box_area(b)[None, :])
    return intersection(a, b) >= share * np.maximum(smaller, 1e-9)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms_groups(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, containment: float = 1.01
) -> list[tuple[int, np.ndarray]]:
    """Greedy NMS. Returns (kept index, indices it suppressed) pairs, best score first.

    A box is also suppressed when more than ``containment`` of its own area lies inside a better box: across
    scales and tiles the same face shows up as a whole box and as a part of it.
    """
    order = np.argsort(-scores, kind="stable")
    areas = box_area(boxes)
    groups: list[tuple[int, np.ndarray]] = []
    while order.size:
        best, rest = order[0], order[1:]
        inter = intersection(boxes[best : best + 1], boxes[rest])[0]
        union = areas[best] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        inside = np.where(areas[rest] > 0, inter / np.maximum(areas[rest], 1e-9), 1.0)
        survives = (iou <= iou_threshold) & (inside <= containment)
        groups.append((int(best), rest[~survives]))
        order = rest[survives]
    return groups


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, containment: float = 1.01) -> np.ndarray:
    """Greedy NMS: kept indices, best score first."""
    return np.asarray([kept for kept, _ in nms_groups(boxes, scores, iou_threshold, containment)], dtype=np.int64)


FUSE_SCORE_RATIO = 0.5  # a suppressed box may widen the kept one when it scored at least this share of it
FUSE_GROWTH = 1.3  # ... and when together they span at least this much more area than the kept box alone


def _hull(boxes: np.ndarray) -> np.ndarray:
    return np.array([*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0)], dtype=np.float32)


def _pair_hulls(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``_hull`` of ``box`` with each of ``others`` in turn, (N, 4)."""
    hulls = np.concatenate([np.minimum(box[:2], others[:, :2]), np.maximum(box[2:], others[:, 2:])], axis=1)
    return hulls.astype(np.float32)


def merge(detections: Detections, iou_threshold: float, containment: float = 0.8) -> Detections:
    """Per-class NMS over detections gathered from several passes, widening a kept box that is a part.

    A tile can cut an object and report the visible part with a higher score than the whole view's box;
    plain NMS would then keep the part and leave the rest unmasked. So a kept box is widened to the hull of
    the confident boxes it suppressed that reach well beyond it. Boxes that merely jitter between passes
    do not widen it, so the masks do not swell with the number of passes.
    """
    fused = []
    for object_class in np.unique(detections.classes):
        subset = detections[detections.classes == object_class]
        boxes = subset.boxes.copy()
        kept = []
        for best, suppressed in nms_groups(subset.boxes, subset.scores, iou_threshold, containment):
            confident = suppressed[subset.scores[suppressed] >= FUSE_SCORE_RATIO * subset.scores[best]]
            own_area = max(float(box_area(subset.boxes[best : best + 1])[0]), 1e-9)
            partners = confident[box_area(_pair_hulls(subset.boxes[best], subset.boxes[confident])) >= FUSE_GROWTH * own_area]
            if len(partners):
                boxes[best] = _hull(subset.boxes[[best, *partners]])
            kept.append(best)
        fused.append(Detections(boxes[kept], subset.scores[kept], subset.classes[kept]))
    return Detections.concat(fused)
