"""Development sets derived from a COCO set photo by photo. This is the loop every builder shares: every
``every``-th photo by id read, edited and written as a JPEG, its boxes edited with it. The edits: moved as a
whole (pipeline/eval/reposed.py: turned on its side, tilted), degraded by a camera's faults
(pipeline/eval/degraded.py), its faces hidden (pipeline/eval/occluded.py). Labels of other kinds than boxes are
not kept, as the edit may have moved them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.eval.images import annotations_per_image, every_nth_image


@dataclass(frozen=True)
class Derived:
    """One photo as edited."""

    pixels: np.ndarray  # RGB
    annotations: list[dict]  # its COCO annotations, as edited
    name: str = ""  # added to the file's name: "left", "tilted"
    record: dict = field(default_factory=dict)  # added to its image entry: how it was edited


# (the photo's place in the set, its RGB pixels, its annotations) -> the photo as edited
PhotoEdit = Callable[[int, np.ndarray, list[dict]], Derived]


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as picture:
            return np.array(picture.convert("RGB"))
    except OSError as error:  # Pillow's UnidentifiedImageError is one, and so is a file cut short
        raise ValueError(f"cannot read {path}: {error}") from error


def build_derived_set(set_dir: Path, out_dir: Path, every: int, edit: PhotoEdit, jpeg_quality: int) -> Path:
    """Every ``every``-th photo of the COCO set in ``set_dir`` (by id), edited by ``edit``, into ``out_dir``
    (``images/`` and ``annotations.json``, the images flattened to one folder); return the annotations' path."""
    gt = every_nth_image(json.loads((set_dir / "annotations.json").read_text()), every)
    by_image = annotations_per_image(gt)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for position, image in enumerate(gt["images"]):
        rgb = _read_rgb(set_dir / "images" / image["file_name"])
        derived = edit(position, rgb, by_image.get(image["id"], []))
        pixels = np.ascontiguousarray(derived.pixels)
        stem = Path(image["file_name"]).with_suffix("").as_posix().replace("/", "_")
        file_name = f"{stem}_{derived.name}.jpg" if derived.name else f"{stem}.jpg"
        (out_dir / "images" / file_name).write_bytes(jpeg_bytes(pixels, jpeg_quality))
        images.append({**image, "file_name": file_name, "width": pixels.shape[1], "height": pixels.shape[0],
                       "source_file": image["file_name"], **derived.record})
        annotations += [{k: v for k, v in a.items() if k != "segmentation"} for a in derived.annotations]
    path = out_dir / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": gt["categories"]}))
    return path
