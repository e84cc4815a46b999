"""A development set tilted: every photo turned by some degrees about its centre, as a camera held askew or a
head leaning over leaves a face. The face model is trained on upright faces, so this is what the face plan's
tilted views (``tilt_45``) are measured on.

Photos alternate: the first tilted counter-clockwise, the next clockwise, and so on, each on a canvas grown to
hold all of it (black corners) and written as a JPEG at quality 95. A box becomes the box around its inscribed
ellipse turned the same way: a face's outline, where the box around the turned corners would hold up to 41%
more than the face. Labels of other kinds than boxes are not kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from pipeline.detect.windows import tilted_canvas, turned_ellipses
from pipeline.eval.images import every_nth_image
from pipeline.eval.sideways import JPEG_QUALITY


def tilted_bbox(bbox: list[float], matrix: np.ndarray) -> list[float]:
    """A COCO box moved by the rotation ``matrix`` (``tilted_canvas``), by its inscribed ellipse."""
    x, y, w, h = bbox
    x1, y1, x2, y2 = turned_ellipses(np.array([[x, y, x + w, y + h]], dtype=np.float64), matrix)[0]
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def build_tilted_set(set_dir: Path, out_dir: Path, degrees: float, every: int = 1) -> Path:
    """Every ``every``-th photo of the COCO set in ``set_dir`` (by id), tilted by ``degrees`` each way in turn,
    into ``out_dir`` (``images/`` and ``annotations.json``); return the annotations' path."""
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
        tilt = degrees if position % 2 == 0 else -degrees
        matrix, (width, height) = tilted_canvas(pixels.shape[1], pixels.shape[0], tilt)
        tilted = cv2.warpAffine(pixels, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        file_name = f"{Path(image['file_name']).with_suffix('').as_posix().replace('/', '_')}_tilted.jpg"
        cv2.imwrite(str(out_dir / "images" / file_name), tilted, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        images.append({"id": image["id"], "file_name": file_name, "width": width, "height": height,
                       "source_file": image["file_name"], "tilt": tilt})
        for annotation in by_image.get(image["id"], []):
            bbox = tilted_bbox(annotation["bbox"], matrix)
            annotations.append({**{k: v for k, v in annotation.items() if k != "segmentation"}, "bbox": bbox,
                                "area": bbox[2] * bbox[3]})
    path = out_dir / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": gt["categories"]}))
    return path
