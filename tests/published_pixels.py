"""Is a published file masked inside a box? Judged on the decoded pixels alone, never on the QC sidecar."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# A box counts as changed when the mean absolute difference (0-255, over its pixels and channels) is at least
# MIN_MEAN_DIFF and at least MIN_CHANGED_SHARE of its pixels differ by more than PIXEL_DIFF in some channel.
# Masked boxes measure 20-60 and 0.7-0.99; a JPEG re-encode at quality 95 about 0.0-1.5 and 0.00.
PIXEL_DIFF = 12
MIN_MEAN_DIFF = 8.0
MIN_CHANGED_SHARE = 0.4
# Or when less than MAX_DETAIL_KEPT of its detail (mean absolute Laplacian) is left: a blur over a dark, flat face
# changes its pixels little (a grey scan's faces: shares 0.33-0.39) but leaves 0.06-0.36 of its detail; a box half
# masked keeps about half, and a JPEG re-encode at quality 95 all of it (1.0).
MAX_DETAIL_KEPT = 0.4


def _box(picture: np.ndarray, bbox) -> np.ndarray:
    x, y, w, h = bbox
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    return picture[y0:int(np.ceil(y + h)), x0:int(np.ceil(x + w))]


def detail(picture: np.ndarray, bbox) -> float:
    """The mean absolute Laplacian of the grey picture inside ``bbox``."""
    grey = _box(picture, bbox).astype(np.float32).mean(axis=2)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def box_change(before: np.ndarray, after: np.ndarray, bbox) -> tuple[float, float]:
    """Mean absolute difference and the share of pixels changed by more than PIXEL_DIFF, inside ``bbox``."""
    diff = np.abs(_box(before, bbox).astype(np.int16) - _box(after, bbox).astype(np.int16))
    return float(diff.mean()), float((diff.max(axis=2) > PIXEL_DIFF).mean())


def changed(before: np.ndarray, after: np.ndarray, bbox) -> bool:
    mean_diff, share = box_change(before, after, bbox)
    if mean_diff >= MIN_MEAN_DIFF and share >= MIN_CHANGED_SHARE:
        return True
    return detail(after, bbox) < MAX_DETAIL_KEPT * detail(before, bbox)  # strictly: a flat box never counts


def decoded(path_or_bytes) -> np.ndarray:
    with Image.open(path_or_bytes) as image:
        return np.asarray(image.convert("RGB"))


def reencoded(picture: np.ndarray) -> np.ndarray:
    """``picture`` unmasked but as compressed as a published file: a JPEG at the output's quality, decoded."""
    from pipeline.params import Params

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=Params().output.jpeg_quality)
    return decoded(buffer)


def unmasked_published(gt_path: Path, engine, out_dir: Path, photos: int = 3, category: int = 1,
                       seen: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda source, picture: picture,
                       ) -> tuple[int, list[str]]:
    """Publish the ``photos`` photos of a COCO set with the most boxes of ``category`` (1 = face, 2 = plate)
    through ``process_file`` at ``Params()`` and judge their pixels alone: (boxes looked at, those left
    unchanged). ``seen(source, picture)`` is how a picture is looked at (both pictures alike), e.g. brightened
    for a night shot. A JPEG re-encode of the source is checked to pass as unchanged, so the measure is shown to
    tell a mask from encoding noise."""
    from pipeline.params import Params
    from pipeline.run import process_file

    gt = json.loads(gt_path.read_text())
    boxes_of = {image["id"]: [a["bbox"] for a in gt["annotations"]
                              if a["image_id"] == image["id"] and a["category_id"] == category]
                for image in gt["images"]}
    busiest = sorted(gt["images"], key=lambda image: -len(boxes_of[image["id"]]))[:photos]
    unchanged, boxes = [], 0
    for image in busiest:
        src = gt_path.parent / "images" / image["file_name"]
        report = process_file(src, out_dir / image["file_name"], Params(), engine, name=image["file_name"])
        assert report.disposition in ("done", "review"), report.error
        source = decoded(src)
        before, after, unmasked = (seen(source, picture) for picture in (source, decoded(out_dir / image["file_name"]),
                                                                          reencoded(source)))
        for bbox in boxes_of[image["id"]]:
            boxes += 1
            assert not changed(before, unmasked, bbox), "JPEG noise passes the measure"
            if not changed(before, after, bbox):
                unchanged.append(f"{image['file_name']} {bbox}")
    return boxes, unchanged


def assert_masked_when_published(gt_path: Path, engine, out_dir: Path, *, min_boxes: int, min_recall: float,
                                 **looked_at) -> None:
    """``unmasked_published`` (``looked_at``: its ``photos``, ``category`` and ``seen``): at least ``min_boxes``
    boxes looked at, and at most the share ``1 - min_recall`` of them left unchanged."""
    boxes, unchanged = unmasked_published(gt_path, engine, out_dir, **looked_at)
    assert boxes >= min_boxes
    assert len(unchanged) <= boxes * (1 - min_recall), "unmasked in the published file:\n" + "\n".join(unchanged)
