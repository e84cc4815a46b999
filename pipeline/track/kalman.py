"""A constant-velocity Kalman filter over boxes as (cx, cy, w, h), noise scaled by the box size.

The state is (cx, cy, w, h, vcx, vcy, vw, vh). As in ByteTrack and BoT-SORT, the process and measurement
noise grow with the box, so a large close face may move more pixels per frame than a small distant one.
"""

from __future__ import annotations

import numpy as np

_DIM = 4
_POS_WEIGHT = 1.0 / 20
_VEL_WEIGHT = 1.0 / 160
_INITIAL_VEL_SHARE = 0.5  # prior speed spread: half the box size per frame

_MOTION = np.eye(2 * _DIM)
_MOTION[:_DIM, _DIM:] = np.eye(_DIM)  # x' = x + v (one frame)
_OBSERVE = np.eye(_DIM, 2 * _DIM)


def xyxy_to_xywh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])


def xywh_to_xyxy(state: np.ndarray) -> np.ndarray:
    cx, cy, w, h = state[:4]
    w, h = max(w, 1.0), max(h, 1.0)  # a prediction never collapses to nothing
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _size_scale(w: float, h: float) -> np.ndarray:
    return np.array([w, h, w, h], dtype=np.float64)


def initiate(box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    measurement = xyxy_to_xywh(box_xyxy)
    mean = np.concatenate([measurement, np.zeros(_DIM)])
    scale = _size_scale(measurement[2], measurement[3])
    # A new object may already move fast (a whip pan): a wide velocity prior lets the first few
    # updates learn it, instead of trailing behind for a second.
    std = np.concatenate([2 * _POS_WEIGHT * scale, _INITIAL_VEL_SHARE * scale])
    return mean, np.diag(std**2)


def predict(mean: np.ndarray, cov: np.ndarray, steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
    for _ in range(steps):
        scale = _size_scale(mean[2], mean[3])
        noise = np.diag(np.concatenate([_POS_WEIGHT * scale, _VEL_WEIGHT * scale]) ** 2)
        mean = _MOTION @ mean
        cov = _MOTION @ cov @ _MOTION.T + noise
    return mean, cov


def update(mean: np.ndarray, cov: np.ndarray, box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    measurement = xyxy_to_xywh(box_xyxy)
    scale = _size_scale(mean[2], mean[3])
    innovation_cov = _OBSERVE @ cov @ _OBSERVE.T + np.diag((_POS_WEIGHT * scale) ** 2)
    gain = np.linalg.solve(innovation_cov, _OBSERVE @ cov).T
    mean = mean + gain @ (measurement - _OBSERVE @ mean)
    cov = cov - gain @ innovation_cov @ gain.T
    return mean, cov


def warp(mean: np.ndarray, cov: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move a state by a 2x3 camera transform (BoT-SORT's camera-motion compensation): the centre and
    velocity through the linear part (plus the shift for the centre), sizes by its scale."""
    linear = matrix[:, :2]
    scale = float(np.sqrt(abs(np.linalg.det(linear))))
    transform = np.zeros((2 * _DIM, 2 * _DIM))
    transform[0:2, 0:2] = linear
    transform[2:4, 2:4] = np.eye(2) * scale
    transform[4:6, 4:6] = linear
    transform[6:8, 6:8] = np.eye(2) * scale
    mean = transform @ mean
    mean[:2] += matrix[:, 2]
    return mean, transform @ cov @ transform.T
