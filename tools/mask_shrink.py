#!/usr/bin/env python3
"""How much each face mask could shrink and still cover its label: the sets' labelling conventions, measured.

    .venv/bin/python tools/mask_shrink.py [--eval-root ../shared/eval] [--cache reports/frontier] [--sets a,b]

For every labelled face matched to a shipped face detection (IoU > ``MATCH``; detections cached at the shipped
defaults by tools/detection_cache.py), the smallest factor by which its shipped mask, scaled about its own
centre, still covers the label to ``COVERED``. Prints per set the median mask-to-label area ratio and that
factor's median, 90th and 98th percentiles and maximum.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect.nms import box_area, intersection, iou_matrix
from pipeline.eval.images import COVERED, label_bounds
from pipeline.mask import region_box
from pipeline.params import Params
from pipeline.records import ObjectClass

from tools.detection_cache import above, annotations_by_image, cached_candidates

MATCH = 0.2
FACTORS = np.arange(0.40, 1.61, 0.02)


def covered_share(mask: tuple[float, ...], label: np.ndarray) -> float:
    return float(intersection(np.array([mask]), label[None])[0, 0] / max(1e-9, float(box_area(label[None])[0])))


def smallest_factor(mask: tuple[float, float, float, float], label: np.ndarray) -> float:
    centre_x, centre_y = (mask[0] + mask[2]) / 2, (mask[1] + mask[3]) / 2
    half_w, half_h = (mask[2] - mask[0]) / 2, (mask[3] - mask[1]) / 2
    for factor in FACTORS:
        scaled = (centre_x - factor * half_w, centre_y - factor * half_h, centre_x + factor * half_w, centre_y + factor * half_h)
        if covered_share(scaled, label) >= COVERED:
            return float(factor)
    return float("inf")


def study(set_dir: Path, cache: Path, params: Params) -> str:
    detections = cached_candidates(set_dir, cache, params)
    images, by_image = annotations_by_image(set_dir)
    factors, ratios = [], []
    for info in images:
        shape, candidates = detections[str(info["id"])]
        faces = above(candidates, params)
        faces = faces[faces.classes == int(ObjectClass.FACE)]
        labels = np.array([label_bounds(a, shape) for a in by_image.get(info["id"], []) if a["category_id"] == ObjectClass.FACE],
                          dtype=np.float32).reshape(-1, 4)
        if not len(labels) or not len(faces.boxes):
            continue
        overlap = iou_matrix(faces.boxes, labels)
        for column, label in enumerate(labels):
            row = int(overlap[:, column].argmax())
            if overlap[row, column] < MATCH:
                continue
            mask = region_box(faces.boxes[row], ObjectClass.FACE, params.mask, shape)
            factors.append(smallest_factor(mask, label))
            ratios.append((mask[2] - mask[0]) * (mask[3] - mask[1]) / float((label[2] - label[0]) * (label[3] - label[1])))
    if not factors:
        return f"| {set_dir.name} | 0 | | |"
    p50, p90, p98 = np.percentile(factors, [50, 90, 98])
    return f"| {set_dir.name} | {len(factors)} | {np.median(ratios):.2f} | {p50:.2f} / {p90:.2f} / {p98:.2f} / {max(factors):.2f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--cache", type=Path, default=Path("reports/frontier"))
    parser.add_argument("--sets", default="cmu_mit_faces,rbnr_faces,dlib_faces_voc")
    args = parser.parse_args()
    print("| set | faces | mask area / label area, median | shrink that still covers: median / p90 / p98 / max |\n|---|---|---|---|")
    for name in args.sets.split(","):
        print(study(args.eval_root / name, args.cache, Params()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
