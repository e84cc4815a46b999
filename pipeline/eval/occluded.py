"""Development sets whose faces are partly hidden: behind sunglasses, behind a medical face mask, or cut in half
by the picture's edge. The face model learnt whole faces; these are what a crowd in the street, a door camera
or a photo cropped by hand show instead.

Sunglasses and face masks are painted on every labelled face (its box is where the face is, so it is what must
be masked, covered or not). A cut photo is cropped so that its left or top edge runs through the middle of the
leftmost or topmost labelled face; each box is clipped to what is left of it, and a photo without a labelled
face is left whole. Photos are written as JPEGs (pipeline/eval/derived.py) at the quality
pipeline/eval/degraded.py uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pipeline.eval.derived import Derived, build_derived_set

FACE = 1  # the COCO category of a face
CUT_SHARE = 0.5  # where the cut runs through the face: half of it is left
SMALLEST_CUT_BOX = 4  # pixels: a box clipped narrower than this is dropped, as nothing of the face is left
JPEG_QUALITY = 90


def sunglasses(rgb: np.ndarray, box: list[float]) -> None:
    """A dark band over the eyes: from a quarter to under half the face's height, across its middle 80%."""
    x, y, w, h = box
    cv2.rectangle(rgb, (int(x + 0.1 * w), int(y + 0.25 * h)), (int(x + 0.9 * w), int(y + 0.48 * h)), (15, 15, 20), -1)


def face_mask(rgb: np.ndarray, box: list[float]) -> None:
    """A pale blue medical mask over the lower half of the face, narrowing towards the chin."""
    x, y, w, h = box
    corners = [(0.1, 0.55), (0.9, 0.55), (0.85, 0.95), (0.15, 0.95)]
    cv2.fillPoly(rgb, [np.array([[x + a * w, y + b * h] for a, b in corners], np.int32)], (170, 200, 225))


COVERINGS: dict[str, Callable[[np.ndarray, list[float]], None]] = {"sunglasses": sunglasses, "face_mask": face_mask}
CUTS = {"cut_left": 0, "cut_top": 1}  # which edge is moved into a face: the box coordinate it runs along
OCCLUSIONS = (*COVERINGS, *CUTS)


def _covered(rgb: np.ndarray, annotations: list[dict], kind: str) -> tuple[np.ndarray, list[dict]]:
    for annotation in annotations:
        if annotation["category_id"] == FACE:
            COVERINGS[kind](rgb, annotation["bbox"])
    return rgb, annotations


def _cut(rgb: np.ndarray, annotations: list[dict], kind: str) -> tuple[np.ndarray, list[dict]]:
    faces = [a for a in annotations if a["category_id"] == FACE]
    if not faces:
        return rgb, annotations
    axis = CUTS[kind]
    first = min(faces, key=lambda a: a["bbox"][axis])
    cut = int(first["bbox"][axis] + CUT_SHARE * first["bbox"][axis + 2])
    dx, dy = (cut, 0) if axis == 0 else (0, cut)
    rgb = rgb[dy:, dx:]
    height, width = rgb.shape[:2]
    kept = []
    for annotation in annotations:
        x, y, w, h = annotation["bbox"]
        x1, y1, x2, y2 = max(0, x - dx), max(0, y - dy), min(width, x + w - dx), min(height, y + h - dy)
        if x2 - x1 >= SMALLEST_CUT_BOX and y2 - y1 >= SMALLEST_CUT_BOX:
            kept.append({**annotation, "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    return np.ascontiguousarray(rgb), kept


def build_occluded_set(set_dir: Path, out_dir: Path, kind: str, every: int = 1) -> Path:
    """Every ``every``-th photo of the COCO set in ``set_dir`` (by id), its faces occluded by ``kind``
    (``OCCLUSIONS``), into ``out_dir`` (``images/`` and ``annotations.json``); return the annotations' path."""
    occlude = _covered if kind in COVERINGS else _cut
    return build_derived_set(set_dir, out_dir, every, lambda _, rgb, boxes: Derived(*occlude(rgb, boxes, kind)),
                             JPEG_QUALITY)
