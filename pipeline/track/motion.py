"""Camera motion between consecutive frames, so predictions follow a panning, zooming or shaking camera.

A Kalman filter alone extrapolates a box along its recent image velocity, which for a hand-held camera
is mostly the camera's motion and changes direction all the time: a lost face's prediction drifts off the
face within a few frames. As in BoT-SORT's camera-motion compensation, the global transform between two
frames is estimated from sparse optical flow (corners tracked with pyramidal Lucas-Kanade, a similarity
transform fitted with RANSAC, so people moving in front of a still camera do not count as camera motion),
and applied to every track before it is predicted.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor, Future

import cv2
import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
MAX_SIDE = 480  # frames are analysed at most this large: camera motion needs no detail
MIN_POINTS = 12
MIN_INLIER_SHARE = 0.3


def small_grey(rgb: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, float]:
    """The frame in grey, its longer side at most ``max_side``, and the scale it was shrunk by: what camera
    motion and scene cuts look at (one conversion serves both)."""
    height, width = rgb.shape[:2]
    # not below a pixel across: a frame thousands of times wider than tall would otherwise have no rows
    scale = min(1.0, max(max_side / max(height, width), 1.0 / min(height, width)))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return grey, scale


class CameraMotion:
    """Feed frames in order, as ``small_grey`` gives them; each call returns the 2x3 transform from the
    previous frame's pixels to this frame's, in full-size pixels (identity for the first frame, or when the
    estimate is not trustworthy). ``ahead``: where a frame's corners are found while the flow into it is
    followed (a third of the work, which needs only that frame); the same transforms either way."""

    def __init__(self, ahead: Executor | None = None) -> None:
        self._ahead = ahead
        self._previous: np.ndarray | None = None
        self._corners: Future[np.ndarray | None] | None = None  # the previous frame's, being found
        self._scale = 1.0

    def update(self, grey: np.ndarray, scale: float) -> np.ndarray:
        """``grey``: this frame as ``small_grey`` gives it, shrunk by ``scale``."""
        self._scale = scale
        previous, self._previous = self._previous, grey
        corners, self._corners = self._corners, self._find_corners(grey)
        if previous is None or corners is None or previous.shape != grey.shape:
            return IDENTITY.copy()
        return self._estimate(previous, corners.result(), grey)

    def _find_corners(self, grey: np.ndarray) -> Future[np.ndarray | None]:
        if self._ahead is not None:
            return self._ahead.submit(_corners, grey)
        found: Future[np.ndarray | None] = Future()
        found.set_result(_corners(grey))
        return found

    def _estimate(self, previous: np.ndarray, corners: np.ndarray | None, current: np.ndarray) -> np.ndarray:
        if corners is None or len(corners) < MIN_POINTS:
            return IDENTITY.copy()
        # nextPts is only an output here (no OPTFLOW_USE_INITIAL_FLOW); an array satisfies every cv2 stub
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            previous, current, corners, np.empty_like(corners), winSize=(21, 21), maxLevel=3
        )
        found = status.reshape(-1) == 1
        if found.sum() < MIN_POINTS:
            return IDENTITY.copy()
        matrix, inliers = cv2.estimateAffinePartial2D(
            corners[found], moved[found], method=cv2.RANSAC, ransacReprojThreshold=2.0
        )
        if matrix is None or inliers is None or inliers.mean() < MIN_INLIER_SHARE:
            return IDENTITY.copy()
        matrix = matrix.astype(np.float64)
        matrix[:, 2] /= self._scale  # the linear part is scale-free; the shift is in analysed pixels
        return matrix


def _corners(grey: np.ndarray) -> np.ndarray | None:
    """The corners worth following out of ``grey`` (None where it has none)."""
    return cv2.goodFeaturesToTrack(grey, maxCorners=400, qualityLevel=0.01, minDistance=7, blockSize=5)


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) x1 y1 x2 y2 moved by a 2x3 transform: the axis-aligned hull of the moved corners."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    corners = boxes[:, [0, 1, 2, 1, 0, 3, 2, 3]].reshape(-1, 4, 2)  # (x1, y1), (x2, y1), (x1, y2), (x2, y2)
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    return np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)


def roll_degrees(matrix: np.ndarray) -> float:
    """How far a 2x3 similarity transform turns the picture, in degrees (its sign says which way)."""
    return math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
