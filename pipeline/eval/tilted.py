"""A development set tilted: every photo turned by some degrees about its centre, as a camera held askew or a
head leaning over leaves a face. The face model is trained on upright faces, so this is what the face plan's
tilted views (``tilt_45``) are measured on.

Photos alternate: the first tilted counter-clockwise, the next clockwise, and so on, each on a canvas grown to
hold all of it (black corners) and written as a JPEG at quality 95 (pipeline/eval/reposed.py). A box becomes
the box around its inscribed ellipse turned the same way: a face's outline, where the box around the turned
corners would hold up to 41% more than the face.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.detect.windows import tilted_canvas, turned_ellipses
from pipeline.eval.reposed import Reposed, build_reposed_set


def tilted_bbox(bbox: list[float], matrix: np.ndarray) -> list[float]:
    """A COCO box moved by the rotation ``matrix`` (``tilted_canvas``), by its inscribed ellipse."""
    x, y, w, h = bbox
    x1, y1, x2, y2 = turned_ellipses(np.array([[x, y, x + w, y + h]], dtype=np.float64), matrix)[0]
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def build_tilted_set(set_dir: Path, out_dir: Path, degrees: float, every: int = 1) -> Path:
    """Every ``every``-th photo of the COCO set in ``set_dir`` (by id), tilted by ``degrees`` each way in turn,
    into ``out_dir`` (``images/`` and ``annotations.json``); return the annotations' path."""

    def tilt(position: int, pixels: np.ndarray) -> Reposed:
        degrees_here = degrees if position % 2 == 0 else -degrees
        matrix, canvas = tilted_canvas(pixels.shape[1], pixels.shape[0], degrees_here)
        tilted = cv2.warpAffine(pixels, matrix, canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return Reposed(tilted, "tilted", {"tilt": degrees_here}, lambda bbox: tilted_bbox(bbox, matrix))

    return build_reposed_set(set_dir, out_dir, every, tilt)
