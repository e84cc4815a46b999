"""A second opinion on plates from another family of detector: OpenCV's Haar cascade, as a review signal.

The plate model misses some plates at every scale (on openalpr_endtoend, a black Czech plate 300 px wide).
A boosted cascade of Haar features, trained on other data with other features, fails elsewhere. Where it
finds a plate-like region that no mask touches, a person should look. It never masks anything: its precision
is far too low for that (signage, tail lights, radiator grilles), so it only routes the photo to review.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import ModelError
from pipeline.media.shrink import shrunk
from pipeline.params import Params

CASCADE = "haarcascade_russian_plate_number.xml"  # ships with opencv-python: nothing to download
WORKING_SIDE = 1280  # the cascade runs on the photo scaled down to this long side, the scale it was measured at


def plate_cascade_finds(rgb: np.ndarray, min_neighbors: int) -> np.ndarray:
    """Boxes (N, 4: x1, y1, x2, y2 in ``rgb``'s pixels) of the plate-like regions the cascade finds.

    Built per call (it loads in about a millisecond), so worker threads never share one."""
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))  # type: ignore[attr-defined]
    if cascade.empty():
        raise ModelError(f"the plate cross-check's cascade {CASCADE} is missing from opencv-python's data")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    small = shrunk(gray, WORKING_SIDE)
    found = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=min_neighbors)
    if not len(found):
        return np.zeros((0, 4), dtype=np.float32)
    x, y, w, h = np.asarray(found, dtype=np.float32).T
    across, down = small.shape[1] / gray.shape[1], small.shape[0] / gray.shape[0]
    return np.stack([x, y, x + w, y + h], axis=1) / np.array([across, down, across, down], dtype=np.float32)


def cross_check_plates(rgb: np.ndarray, params: Params) -> np.ndarray:
    """The cascade's plate-like finds in ``rgb``; none when the profile turns the cross-check off or does not
    search plates at all (nothing of that class is masked then). ``pipeline.mask.unmasked`` keeps those no
    mask touches."""
    if not params.review.plate_cross_check or "license_plate" not in params.detector.classes:
        return np.zeros((0, 4), dtype=np.float32)
    return plate_cascade_finds(rgb, params.review.plate_cross_check_neighbors)
