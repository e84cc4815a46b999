"""Development sets whose photos are moved as a whole, their boxes following: turned on their side
(pipeline/eval/sideways.py) or tilted (pipeline/eval/tilted.py), each written as a JPEG at quality 95 by the loop
every derived set shares (pipeline/eval/derived.py). An object's area does not change when its photo is turned,
so each annotation keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.eval.derived import Derived, build_derived_set

JPEG_QUALITY = 95


class Reposed(NamedTuple):
    """One photo as moved."""

    pixels: np.ndarray
    name: str  # added to the file's name: "left", "tilted"
    record: dict  # added to its image entry: how it was moved
    box: Callable[[list[float]], list[float]]  # a COCO box of the photo, moved the same way


def build_reposed_set(set_dir: Path, out_dir: Path, every: int, repose: Callable[[int, np.ndarray], Reposed]) -> Path:
    """Every ``every``-th photo of the COCO set in ``set_dir`` (by id), moved by ``repose(position, pixels)``,
    into ``out_dir`` (``images/`` and ``annotations.json``); return the annotations' path."""

    def move(position: int, rgb: np.ndarray, annotations: list[dict]) -> Derived:
        moved = repose(position, rgb)
        return Derived(moved.pixels, [{**a, "bbox": moved.box(a["bbox"])} for a in annotations], moved.name,
                       moved.record)

    return build_derived_set(set_dir, out_dir, every, move, JPEG_QUALITY)
