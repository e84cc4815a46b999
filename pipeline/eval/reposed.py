"""Development sets whose photos are moved as a whole, their boxes following: turned on their side
(pipeline/eval/sideways.py) or tilted (pipeline/eval/tilted.py). This is the loop those builders share: every
``every``-th photo by id read, moved, written as a JPEG at quality 95, and its boxes moved the same way. An
object's area does not change when its photo is turned, so each annotation keeps its own; labels of other kinds
than boxes are not kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.eval.images import annotations_per_image, every_nth_image

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
    gt = every_nth_image(json.loads((set_dir / "annotations.json").read_text()), every)
    by_image = annotations_per_image(gt)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for position, image in enumerate(gt["images"]):
        pixels = cv2.imread(str(set_dir / "images" / image["file_name"]), cv2.IMREAD_COLOR)
        if pixels is None:
            raise ValueError(f"cannot read {image['file_name']} in {set_dir}")
        moved = repose(position, pixels)
        file_name = f"{Path(image['file_name']).with_suffix('').as_posix().replace('/', '_')}_{moved.name}.jpg"
        cv2.imwrite(str(out_dir / "images" / file_name), moved.pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        height, width = moved.pixels.shape[:2]
        images.append({"id": image["id"], "file_name": file_name, "width": width, "height": height,
                       "source_file": image["file_name"], **moved.record})
        for annotation in by_image.get(image["id"], []):
            kept = {k: v for k, v in annotation.items() if k != "segmentation"}
            annotations.append({**kept, "bbox": moved.box(annotation["bbox"])})
    path = out_dir / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": gt["categories"]}))
    return path
