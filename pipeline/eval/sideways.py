"""A development set saved on its side: every photo turned a quarter turn with no EXIF orientation, as a
scanner, a camera held upright or a tool that strips EXIF without applying it leaves it. The face model is
trained on upright faces, so this is what the face plan's quarter-turn views (``rotate_90``) are measured on.

Photos alternate: the first turned left (counter-clockwise), the next right, and so on, each written as a
JPEG at quality 95 with its boxes turned the same way (pipeline/eval/reposed.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.eval.reposed import Reposed, build_reposed_set


def turned_bbox(bbox: list[float], turns: int, width: int, height: int) -> list[float]:
    """A COCO box of a ``width`` x ``height`` photo, after ``turns`` quarter turns counter-clockwise
    (``np.rot90``; 1 or 3)."""
    x, y, w, h = bbox
    if turns % 4 == 1:  # (x, y) -> (y, width - x)
        return [y, width - x - w, h, w]
    if turns % 4 == 3:  # (x, y) -> (height - y, x)
        return [height - y - h, x, h, w]
    raise ValueError(f"a quarter turn is 1 or 3, not {turns}")


def build_sideways_set(set_dir: Path, out_dir: Path, every: int = 1) -> Path:
    """Every ``every``-th photo of the COCO set in ``set_dir`` (by id), turned, into ``out_dir`` (``images/``
    and ``annotations.json``); return the annotations' path."""

    def turn(position: int, pixels: np.ndarray) -> Reposed:
        turns = 1 if position % 2 == 0 else 3
        height, width = pixels.shape[:2]
        return Reposed(np.rot90(pixels, turns), "left" if turns == 1 else "right", {"turns": turns},
                       lambda bbox: turned_bbox(bbox, turns, width, height))

    return build_reposed_set(set_dir, out_dir, every, turn)
