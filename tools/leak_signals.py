#!/usr/bin/env python3
"""Can a near-miss send a leaking photo to review? The signal "an unmasked candidate just below the review
floor", measured as a leak classifier per evaluation set.

    .venv/bin/python tools/leak_signals.py [--eval-root ../shared/eval] [--cache reports/frontier] [--sets a,b]

Detection runs once per set at the shipped defaults and is cached (tools/detection_cache.py). A file leaks
when some ground-truth box is covered less than ``COVERED`` by the shipped masks, as ``veil eval`` counts
it. For each signal floor (a share of each class's review floor, never under the AP floor the cache holds),
a file is routed when a merged candidate of a class scores from that floor up to the class's review floor
and the shipped masks cover less than half of its box. It prints, per set and floor, the review rate and
the leak capture; then, for every leaking box, the best candidate of any score that overlaps it, which says
whether any score-based signal could see it at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect.nms import iou_matrix
from pipeline.eval.images import AP_FLOOR, COVERED
from pipeline.mask import pixel_bounds
from pipeline.params import Params
from pipeline.records import Detections, ObjectClass

from tools.detection_cache import (
    above,
    annotations_by_image,
    box_coverages,
    cached_candidates,
    chosen_sets,
    shipped_coverage,
    study_parser,
)

SHARES = (0.25, 0.4, 0.5, 0.6, 0.75, 0.9)  # signal floors, as shares of each class's review floor
UNMASKED = 0.5  # a candidate counts as unmasked when the shipped masks cover less than this share of its box


def near_misses(candidates: Detections, covered: np.ndarray, params: Params, share: float) -> int:
    """How many merged candidates score from ``share`` of their class's review floor up to it and are unmasked."""
    review = {c: params.detector.thresholds(c).review_floor for c in ObjectClass}
    floor = {c: max(AP_FLOOR, share * review[c]) for c in ObjectClass}
    merged = above(candidates, params, floor)
    count = 0
    for box, score, value in zip(merged.boxes, merged.scores, merged.classes):
        if score >= review[ObjectClass(int(value))]:
            continue
        x0, y0, x1, y1 = pixel_bounds(box, covered.shape)
        region = covered[y0:y1, x0:x1]
        if region.size and region.mean() < UNMASKED:
            count += 1
    return count


def study(set_dir: Path, cache: Path, params: Params) -> tuple[list[str], list[str]]:
    """The table rows (one per signal floor) and the lines on each leaking box."""
    detections = cached_candidates(set_dir, cache, params)
    images, by_image = annotations_by_image(set_dir)
    leaking, signals, notes = [], {share: [] for share in SHARES}, []
    for info in images:
        shape, candidates = detections[str(info["id"])]
        covered = shipped_coverage(shape, candidates, params)
        annotations = by_image.get(info["id"], [])
        shares = box_coverages(covered, annotations)
        leaking.append(any(s < COVERED for s in shares))
        for share in SHARES:
            signals[share].append(near_misses(candidates, covered, params, share) > 0)
        for annotation, share in zip(annotations, shares):
            if share >= COVERED:
                continue
            x, y, w, h = annotation["bbox"]
            same = candidates.classes == annotation["category_id"]
            overlap = iou_matrix(np.array([[x, y, x + w, y + h]], dtype=np.float32), candidates.boxes[same])
            best = float(candidates.scores[same][overlap[0] > 0.1].max()) if overlap.size and (overlap[0] > 0.1).any() else 0.0
            notes.append(f"{set_dir.name} {info['file_name']}: {ObjectClass(annotation['category_id']).label} covered "
                         f"{share:.0%}, best overlapping candidate (IoU > 0.1) scores {best:.3f}")
    files, leaks = len(images), sum(leaking)
    rows = []
    for share in SHARES:
        routed = signals[share]
        captured = sum(1 for r, leak in zip(routed, leaking) if r and leak)
        capture = f"{captured}/{leaks}" if leaks else "no leaks"
        rows.append(f"| {set_dir.name} | {share:.2f} | {sum(routed) / max(1, files):.1%} | {capture} |")
    return rows, notes


def main() -> int:
    parser = study_parser(__doc__)
    args = parser.parse_args()
    sets = chosen_sets(args)
    print("| set | signal floor (share of the review floor) | review rate | leak capture |\n|---|---|---|---|")
    notes = []
    for set_dir in sets:
        rows, leaks = study(set_dir, args.cache, Params())
        print("\n".join(rows), flush=True)
        notes += leaks
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
