#!/usr/bin/env python3
"""What tighter masks cost: mask recall against area masked outside ground truth, per set, per mask setting.

    .venv/bin/python tools/mask_frontier.py [--eval-root ../shared/eval] [--cache reports/frontier]
                                            [--sets a,b] [--variants '[{}, {"shape": "ellipse"}]']

Detection runs once per set at the shipped defaults (``Params()``, every class) and is cached as JSON in
``--cache`` (tools/detection_cache.py, shared with tools/leak_signals.py); each variant is a dict of ``[mask]`` keys laid over the defaults. Both
figures come from the functions ``veil eval`` uses (``plan_regions`` and ``coverage``), so a row here is
what ``veil eval`` reports with that ``[mask]`` section, without re-running the detectors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.eval.images import COVERED, label_bounds
from pipeline.params import MaskParams, Params
from pipeline.records import Detections

from tools.detection_cache import (
    annotations_by_image,
    box_coverages,
    cached_candidates,
    chosen_sets,
    shipped_coverage,
    study_parser,
)

DEFAULT_VARIANTS = [
    {},
    {"shape": "ellipse"},
    {"face_margin": 0.15},
    {"square_faces": False, "face_margin": 0.3},
    {"mask_review_band": False},
    {"margin": 0.1},
]


def score(set_dir: Path, detections: dict[str, tuple[tuple[int, ...], Detections]], params: Params) -> tuple[float, int, float]:
    """Mask recall (boxes >= COVERED), leaking boxes, and the share of image area masked outside ground truth."""
    images, by_image = annotations_by_image(set_dir)
    coverages, outside, pixels = [], 0, 0
    for info in images:
        shape, candidates = detections[str(info["id"])]
        covered = shipped_coverage(shape, candidates, params)
        annotations = by_image.get(info["id"], [])
        coverages += box_coverages(covered, annotations)
        labelled = np.zeros(shape[:2], dtype=bool)
        for annotation in annotations:
            x0, y0, x1, y1 = label_bounds(annotation, shape)
            labelled[y0:y1, x0:x1] = True
        outside += int((covered & ~labelled).sum())
        pixels += covered.size
    shares = np.array(coverages)
    return float((shares >= COVERED).mean()), int((shares < COVERED).sum()), outside / max(1, pixels)


def main() -> int:
    parser = study_parser(__doc__)
    parser.add_argument("--variants", default=json.dumps(DEFAULT_VARIANTS), help="JSON list of [mask] overrides")
    args = parser.parse_args()
    sets = chosen_sets(args)
    variants = json.loads(args.variants)
    print("| set | [mask] overrides | mask recall | leaks | masked outside GT |\n|---|---|---|---|---|")
    for set_dir in sets:
        detections = cached_candidates(set_dir, args.cache, Params())
        for variant in variants:
            recall, leaks, outside = score(set_dir, detections, Params(mask=MaskParams(**variant)))
            print(f"| {set_dir.name} | `{json.dumps(variant)}` | {recall:.2%} | {leaks} | {outside:.2%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
