"""Box geometry shared by the detector families: IoU, NMS and cross-scale merging."""

from __future__ import annotations

import numpy as np

from ..records import Detections


def box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas, shape (len(a), len(b))."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, containment: float = 1.01) -> np.ndarray:
    """Greedy NMS. Returns kept indices, best score first.

    A box is also dropped when more than ``containment`` of its own area lies inside a better box: across
    scales and tiles the same face shows up as a whole box and as a part of it.
    """
    order = np.argsort(-scores, kind="stable")
    areas = box_area(boxes)
    keep: list[int] = []
    while order.size:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        inter = intersection(boxes[best : best + 1], boxes[rest])[0]
        union = areas[best] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        inside = np.where(areas[rest] > 0, inter / np.maximum(areas[rest], 1e-9), 1.0)
        order = rest[(iou <= iou_threshold) & (inside <= containment)]
    return np.asarray(keep, dtype=np.int64)


def merge(detections: Detections, iou_threshold: float, containment: float = 0.8) -> Detections:
    """Per-class NMS over detections gathered from several passes."""
    kept = []
    for object_class in np.unique(detections.classes):
        subset = detections[detections.classes == object_class]
        kept.append(subset[nms(subset.boxes, subset.scores, iou_threshold, containment)])
    return Detections.concat(kept)
