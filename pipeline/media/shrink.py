"""Pictures scaled down for a measure or a second detector that works at one size."""

from __future__ import annotations

import cv2
import numpy as np


def shrunk(picture: np.ndarray, long_side: int) -> np.ndarray:
    """``picture`` scaled down (area-averaged) so that its longer side is ``long_side``, each side kept at 1 pixel
    at least (a panorama thousands of times wider than tall would otherwise have none); the picture itself when
    it is no larger."""
    height, width = picture.shape[:2]
    factor = long_side / max(height, width)
    if factor >= 1.0:
        return picture
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
