"""A development set saved on its side: every photo turned a quarter turn with no EXIF orientation, as a
scanner, a camera held upright or a tool that strips EXIF without applying it leaves it. The face model is
trained on upright faces, so this is what the face plan's quarter-turn views (``rotate_90``) are measured on.

Photos alternate: the first turned left (counter-clockwise), the next right, and so on, each written as a
JPEG at quality 95 with its boxes turned the same way. Labels of other kinds than boxes are not kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from pipeline.eval.images import every_nth_image

JPEG_QUALITY = 95


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
    gt = every_nth_image(json.loads((set_dir / "annotations.json").read_text()), every)
    by_image: dict[int, list[dict]] = {}
    for annotation in gt["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for position, image in enumerate(gt["images"]):
        pixels = cv2.imread(str(set_dir / "images" / image["file_name"]), cv2.IMREAD_COLOR)
        if pixels is None:
            raise ValueError(f"cannot read {image['file_name']} in {set_dir}")
        turns = 1 if position % 2 == 0 else 3
        height, width = pixels.shape[:2]
        side = "left" if turns == 1 else "right"
        file_name = f"{Path(image['file_name']).with_suffix('').as_posix().replace('/', '_')}_{side}.jpg"
        cv2.imwrite(str(out_dir / "images" / file_name), np.rot90(pixels, turns), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        images.append({"id": image["id"], "file_name": file_name, "width": height, "height": width,
                       "source_file": image["file_name"], "turns": turns})
        for annotation in by_image.get(image["id"], []):
            bbox = turned_bbox(annotation["bbox"], turns, width, height)
            annotations.append({**{k: v for k, v in annotation.items() if k != "segmentation"}, "bbox": bbox})
    path = out_dir / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": gt["categories"]}))
    return path
