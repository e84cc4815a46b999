"""Box overlap and one-to-one assignment (Hungarian method, scipy)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N,4) with every box in ``b`` (M,4), x1 y1 x2 y2; (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def overlapped(a: np.ndarray, b: np.ndarray, min_iou: float) -> np.ndarray:
    """For each box in ``a``, whether some box in ``b`` overlaps it at IoU ``min_iou`` or more; (N,) bool."""
    iou = iou_matrix(a, b)
    return iou.max(axis=1) >= min_iou if iou.shape[1] else np.zeros(iou.shape[0], dtype=bool)


def assign(iou: np.ndarray, min_iou: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pairs (row, col) maximising total IoU with every pair at ``min_iou`` or more; then the unmatched
    rows and columns."""
    rows, cols = iou.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    cost = np.where(iou >= min_iou, 1.0 - iou, 1e6)
    picked_rows, picked_cols = linear_sum_assignment(cost)
    pairs = [(int(r), int(c)) for r, c in zip(picked_rows, picked_cols) if iou[r, c] >= min_iou]
    matched_rows = {r for r, _ in pairs}
    matched_cols = {c for _, c in pairs}
    return pairs, [r for r in range(rows) if r not in matched_rows], [c for c in range(cols) if c not in matched_cols]


def centre_similarity(tracks: np.ndarray, dets: np.ndarray, gate: np.ndarray) -> np.ndarray:
    """1 - d / (gate * size): how close each detection's centre is to each track's, with ``size`` the
    track box's geometric mean side and ``gate`` per track; 0 beyond the gate. Shapes as iou_matrix."""
    tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 4)
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 4)
    tc = (tracks[:, :2] + tracks[:, 2:]) / 2
    dc = (dets[:, :2] + dets[:, 2:]) / 2
    size = np.sqrt(np.clip(tracks[:, 2] - tracks[:, 0], 1, None) * np.clip(tracks[:, 3] - tracks[:, 1], 1, None))
    reach = np.broadcast_to(np.asarray(gate, dtype=np.float64), (len(tracks),)) * size
    distance = np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=2)
    # Sizes must agree too: a plate-sized box is not the same object as a face twice its size.
    dsize = np.sqrt(np.clip(dets[:, 2] - dets[:, 0], 1, None) * np.clip(dets[:, 3] - dets[:, 1], 1, None))
    ratio = np.minimum(size[:, None], dsize[None, :]) / np.maximum(size[:, None], dsize[None, :])
    similarity = np.clip(1 - distance / np.where(reach[:, None] > 0, reach[:, None], 1), 0, None)
    return np.where(ratio >= 0.5, similarity, 0.0)
