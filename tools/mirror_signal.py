#!/usr/bin/env python3
"""Can the mirrored photo catch a face the shipped pass left unmasked? The signal "a face found in the
mirror image that no mask touches", measured as a leak classifier per evaluation set (issue 16's "one view
of the image disagreeing with another").

    .venv/bin/python tools/mirror_signal.py [--eval-root ../shared/eval] [--cache reports/frontier] [--sets a,b]
        [--scores 0.3,0.4,0.5,0.6]

Detection at the shipped defaults is cached per set (tools/detection_cache.py), and so are the mirror
views' faces (down to 0.1): the photo flipped left to right, fed to the face model whole (``whole``) and,
below the face plan's ``upscale_below``, also at twice the size (``whole2x``), boxes mapped back. A file
leaks when some ground-truth box is covered less than ``COVERED`` by the shipped masks, as ``veil eval``
counts it. It is routed when a mirror face at or above the score is unmasked (``pipeline.mask.unmasked``),
or when the shipped plate cross-check routes it. Prints, per set, view and score, the review rate with and
without the signal's files and the leaking files routed; then each file the signal routes, with the box,
so that a person can look at what it found.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect.cascade import cross_check_plates
from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.eval.images import COVERED
from pipeline.mask import unmasked
from pipeline.media.image import load_image
from pipeline.params import Params, ScalePlan
from pipeline.records import ObjectClass

from tools.detection_cache import (
    annotations_by_image,
    box_coverages,
    cached_candidates,
    chosen_sets,
    shipped_coverage,
    study_parser,
)

FACES = frozenset({ObjectClass.FACE})
MIRROR_FLOOR = 0.1  # the mirror finds are cached down to this score


def mirror_views(params: Params) -> dict[str, ScalePlan]:
    """The face plan's whole-image passes alone: no tiles, no half-size or upside-down view."""
    plan = params.detector.for_class(ObjectClass.FACE).scales
    whole = plan.model_copy(update={"upscale_below": 0, "tile_above": 10**6, "downscale": False, "rotate_180": False})
    return {"whole": whole, "whole2x": whole.model_copy(update={"upscale_below": plan.upscale_below})}


def cached_mirror_finds(set_dir: Path, cache: Path, params: Params) -> dict[str, dict]:
    """Per image id: each mirror view's faces (boxes in the photo's pixels, scores), and the plate
    cross-check's finds at the shipped settings."""
    path = cache / f"{set_dir.name}.mirror.json"
    if not path.exists():
        engine = Engine.load(params.detector, RuntimeParams())
        rows = {}
        for info in json.loads((set_dir / "annotations.json").read_text())["images"]:
            rgb = load_image(set_dir / "images" / info["file_name"], params.output.max_pixels).rgb
            row: dict = {"plate_cross_check": cross_check_plates(rgb, params).tolist()}
            for name, plan in mirror_views(params).items():
                found = engine.detect(np.ascontiguousarray(rgb[:, ::-1]), MIRROR_FLOOR, {ObjectClass.FACE: plan}, FACES)
                boxes = found.boxes.copy()
                boxes[:, [0, 2]] = rgb.shape[1] - found.boxes[:, [2, 0]]
                row[name] = {"boxes": boxes.tolist(), "scores": found.scores.tolist()}
            rows[str(info["id"])] = row
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))
    return json.loads(path.read_text())


def study(set_dir: Path, cache: Path, params: Params, scores: list[float]) -> tuple[list[str], list[str]]:
    """The table rows (one per view and score) and the lines on each file the signal routes."""
    detections = cached_candidates(set_dir, cache, params)
    mirrored = cached_mirror_finds(set_dir, cache, params)
    images, by_image = annotations_by_image(set_dir)
    shipped = []  # per photo, once: the shipped masks, whether it leaks, whether the plate cross-check routes it
    for info in images:
        shape, candidates = detections[str(info["id"])]
        covered = shipped_coverage(shape, candidates, params)
        leaking = any(s < COVERED for s in box_coverages(covered, by_image.get(info["id"], [])))
        plate_finds = np.array(mirrored[str(info["id"])]["plate_cross_check"], np.float32).reshape(-1, 4)
        shipped.append((covered, leaking, len(unmasked(plate_finds, covered)) > 0))
    leaks, plate_routed = sum(leaking for _, leaking, _ in shipped), sum(plate for _, _, plate in shipped)
    files = max(1, len(images))
    rows, notes = [], []
    for view in mirror_views(params):
        for score in scores:
            alone = routed = captured = 0
            for info, (covered, leaking, plate) in zip(images, shipped):
                row = mirrored[str(info["id"])][view]
                boxes = np.array(row["boxes"], np.float32).reshape(-1, 4)
                finds = unmasked(boxes[np.array(row["scores"]) >= score], covered)
                alone += bool(len(finds))
                routed += plate or bool(len(finds))
                captured += leaking and (plate or bool(len(finds)))
                if len(finds) and score == scores[0]:
                    notes.append(f"{set_dir.name} {view} {info['file_name']}: {np.round(finds).astype(int).tolist()}"
                                 f"{' (leaking)' if leaking else ''}")
            rows.append(f"| {set_dir.name} | {view} | {score} | {plate_routed / files:.1%} | {alone / files:.1%} "
                        f"| {routed / files:.1%} | {f'{captured}/{leaks}' if leaks else 'no leaks'} |")
    return rows, notes


def main() -> int:
    parser = study_parser(__doc__)
    parser.add_argument("--scores", default="0.3,0.4,0.5,0.6")
    args = parser.parse_args()
    sets = chosen_sets(args)
    scores = sorted(float(s) for s in args.scores.split(","))
    print("| set | view | mirror face score | review rate, shipped | mirror alone | both | leaking files routed |\n"
          "|---|---|---|---|---|---|---|")
    notes = []
    for set_dir in sets:
        rows, routed = study(set_dir, args.cache, Params(), scores)
        print("\n".join(rows), flush=True)
        notes += routed
    print(f"\nFiles the mirror routes at score {scores[0]}:\n" + "\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
