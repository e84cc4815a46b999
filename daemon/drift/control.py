"""The control set: real annotated images, each also perturbed (darken, blur, JPEG q20, grayscale/IR,
downscale), run through the real detectors. For each version it keeps the sidecar features (computed by
pipeline/features.py from the real pixels) and the raw detections, plus how many annotated objects a
confident detection found. The sensitivity table and the drift simulation are built on these records.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from pipeline.detect.engine import Engine
from pipeline.eval.degraded import DEGRADATIONS, Degradation
from pipeline.eval.derived import jpeg_bytes
from pipeline.features import detector_stats, image_features
from pipeline.media.image import load_image
from pipeline.params import Params
from pipeline.records import Detections, ObjectClass

CONTROL_SETS = ("rbnr_faces", "cmu_mit_faces", "openalpr_endtoend", "ucsd_lp")
_MAX_SIDE = 1024  # control images are brought to at most this size first: the same camera for every version
_MATCH_IOU = 0.3  # loose: cmu_mit boxes are larger than tight face boxes (see ../shared/eval/README.md)


# The perturbations of the control set (the drift simulation's caches are keyed by these names).
PERTURBATIONS: dict[str, Degradation] = {
    name: DEGRADATIONS[name] for name in ("none", "darken", "blur", "jpeg_q20", "grayscale_ir", "downscale")
}


@dataclass(frozen=True)
class ControlImage:
    dataset: str
    file: Path
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2 in the file's pixels
    classes: np.ndarray  # (N,) ObjectClass values


def control_images(eval_dir: Path, per_set: int) -> list[ControlImage]:
    """``per_set`` annotated images from each control data set, spread evenly over its file list."""
    out = []
    for name in CONTROL_SETS:
        coco = json.loads((eval_dir / name / "annotations.json").read_text())
        images = sorted(coco["images"], key=lambda i: i["file_name"])
        step = max(1, len(images) // per_set)
        for info in images[::step][:per_set]:
            anns = [a for a in coco["annotations"] if a["image_id"] == info["id"] and not a.get("iscrowd")]
            boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=np.float32).reshape(-1, 4)
            out.append(ControlImage(name, eval_dir / name / "images" / info["file_name"], boxes,
                                    np.array([a["category_id"] for a in anns], dtype=np.int64)))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x2, y2 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def found(truth: np.ndarray, truth_classes: np.ndarray, dets: Detections, params: Params) -> dict[str, list[int]]:
    """Per class: [annotated objects matched by a confident detection (IoU >= 0.3, one each), annotated]."""
    out = {}
    for object_class in ObjectClass:
        gt = truth[truth_classes == int(object_class)]
        of_class = dets.classes == int(object_class)
        confident = dets.boxes[of_class & (dets.scores >= params.detector.thresholds(object_class).threshold)]
        hits = 0
        if len(gt) and len(confident):
            iou = _iou(gt, confident)
            while iou.size and iou.max() >= _MATCH_IOU:
                i, j = np.unravel_index(np.argmax(iou), iou.shape)
                hits += 1
                iou[i, :], iou[:, j] = -1, -1
        out[object_class.label] = [hits, int(len(gt))]
    return out


def measure(images: list[ControlImage], params: Params, engine: Engine) -> list[dict[str, Any]]:
    """One record per image and perturbation: features, raw detections, objects found."""
    records = []
    with tempfile.TemporaryDirectory(prefix="veil-control-") as tmp:
        for index, image in enumerate(images):
            base = load_image(image.file, params.output.max_pixels).rgb
            factor = min(1.0, _MAX_SIDE / max(base.shape[:2]))
            if factor < 1.0:
                base = cv2.resize(base, (round(base.shape[1] * factor), round(base.shape[0] * factor)),
                                  interpolation=cv2.INTER_AREA)
            for name, degradation in PERTURBATIONS.items():
                path = Path(tmp) / f"{index}-{name}.jpg"
                path.write_bytes(jpeg_bytes(np.ascontiguousarray(degradation.pixels(base)), degradation.jpeg_quality))
                rgb = np.array(Image.open(path).convert("RGB"))  # what a camera would have delivered
                dets = engine.detect(rgb)
                records.append({
                    "image": index, "dataset": image.dataset, "perturbation": name, "shape": list(rgb.shape),
                    "features": image_features(path, rgb, dets, params, "JPEG"),
                    "detections": {"boxes": dets.boxes.tolist(), "scores": dets.scores.tolist(),
                                   "classes": dets.classes.tolist()},
                    "found": found(image.boxes * factor * degradation.box_scale, image.classes, dets, params),
                })
    return records


def with_scores_lowered(record: dict[str, Any], factor: float, params: Params) -> dict[str, Any]:
    """The same file as if the detector's scores had dropped by ``factor`` (e.g. a degraded model)."""
    raw = record["detections"]
    dets = Detections(np.array(raw["boxes"], dtype=np.float32).reshape(-1, 4),
                      np.array(raw["scores"], dtype=np.float32) * factor, np.array(raw["classes"], dtype=np.int64))
    floor = {c: params.detector.thresholds(c).review_floor for c in ObjectClass}
    keep = np.array([s >= floor[ObjectClass(c)] for s, c in zip(dets.scores, dets.classes)], dtype=bool)
    dets = dets[keep]
    features = dict(record["features"], detector=detector_stats(dets, params, tuple(record["shape"])))
    return dict(record, perturbation=f"scores_x{factor:g}", features=features)


def recall_table(records: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per perturbation and class, the recall of confident detections on the control set."""
    table: dict[str, dict[str, float | None]] = {}
    for name in PERTURBATIONS:
        rows = [r for r in records if r["perturbation"] == name]
        table[name] = {}
        for label in (c.label for c in ObjectClass):
            hits = sum(r["found"][label][0] for r in rows)
            total = sum(r["found"][label][1] for r in rows)
            table[name][label] = hits / total if total else None
    return table
