#!/usr/bin/env python3
"""The plate cross-check as a leak classifier per evaluation set, for several ``plate_cross_check_neighbors``.

    .venv/bin/python tools/cross_check_sweep.py [--eval-root ../shared/eval] [--cache reports/frontier] [--sets a,b]
        [--neighbours 8,10,11,12,14]

Detection runs once per set at the shipped defaults and is cached (tools/detection_cache.py). A file leaks when
some ground-truth box is covered less than ``COVERED`` by the shipped masks, as ``veil eval`` counts it; it is
routed when the cascade, run as ``veil process`` runs it, finds a region those masks leave untouched. Prints,
per set and setting, the review rate and the leaking files routed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect.cascade import plate_cascade_finds
from pipeline.eval.images import COVERED
from pipeline.mask import unmasked
from pipeline.media.image import load_image
from pipeline.params import Params

from tools.detection_cache import (
    annotations_by_image,
    box_coverages,
    cached_candidates,
    chosen_sets,
    shipped_coverage,
    study_parser,
)


def sweep(set_dir: Path, cache: Path, params: Params, neighbours: list[int]) -> list[str]:
    detections = cached_candidates(set_dir, cache, params)
    images, by_image = annotations_by_image(set_dir)
    leaking, routed = [], {n: [] for n in neighbours}
    for info in images:
        shape, candidates = detections[str(info["id"])]
        covered = shipped_coverage(shape, candidates, params)
        leaking.append(any(s < COVERED for s in box_coverages(covered, by_image.get(info["id"], []))))
        rgb = load_image(set_dir / "images" / info["file_name"], params.output.max_pixels).rgb
        for n in neighbours:
            routed[n].append(len(unmasked(plate_cascade_finds(rgb, n), covered)) > 0)
    rows = []
    for n in neighbours:
        captured = sum(1 for r, leak in zip(routed[n], leaking) if r and leak)
        rows.append(f"| {set_dir.name} | {n} | {sum(routed[n])}/{len(images)} = {sum(routed[n]) / max(1, len(images)):.1%} "
                    f"| {captured}/{sum(leaking)} |")
    return rows


def main() -> int:
    parser = study_parser(__doc__)
    parser.add_argument("--neighbours", default="8,10,11,12,14")
    args = parser.parse_args()
    sets = chosen_sets(args)
    neighbours = [int(n) for n in args.neighbours.split(",")]
    print("| set | neighbours | review rate | leaking files routed |\n|---|---|---|---|")
    for set_dir in sets:
        print("\n".join(sweep(set_dir, args.cache, Params(), neighbours)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
