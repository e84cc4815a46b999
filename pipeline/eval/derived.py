"""Development sets derived from a COCO set photo by photo: every n-th photo by id is read, edited (degraded by a
camera's faults in pipeline/eval/degraded.py, its faces hidden in pipeline/eval/occluded.py) and written as a JPEG
with the boxes the edit gives it, ready for ``veil eval``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.eval.images import annotations_per_image, every_nth_image

# One photo's pixels and its annotations in, the edited pixels and their annotations out.
PhotoEdit = Callable[[np.ndarray, list[dict]], tuple[np.ndarray, list[dict]]]


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def build_derived_set(set_dir: Path, out_dir: Path, every: int, edit: PhotoEdit, jpeg_quality: int) -> Path:
    """Every ``every``-th photo of the COCO set in ``set_dir`` (by id), edited by ``edit``, into ``out_dir``
    (``images/`` and ``annotations.json``, the images flattened to one folder); return the annotations' path."""
    gt = every_nth_image(json.loads((set_dir / "annotations.json").read_text()), every)
    by_image = annotations_per_image(gt)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image in gt["images"]:
        rgb = np.array(Image.open(set_dir / "images" / image["file_name"]).convert("RGB"))
        pixels, boxes = edit(rgb, by_image.get(image["id"], []))
        pixels = np.ascontiguousarray(pixels)
        file_name = f"{Path(image['file_name']).with_suffix('').as_posix().replace('/', '_')}.jpg"
        (out_dir / "images" / file_name).write_bytes(jpeg_bytes(pixels, jpeg_quality))
        images.append({**image, "file_name": file_name, "width": pixels.shape[1], "height": pixels.shape[0]})
        annotations += boxes
    path = out_dir / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": gt["categories"]}))
    return path
