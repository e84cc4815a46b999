#!/usr/bin/env python3
"""What tighter masks cost: mask recall against area masked outside ground truth, per set, per mask setting.

    .venv/bin/python tools/mask_frontier.py [--eval-root ../shared/eval] [--cache reports/frontier]
                                            [--sets a,b] [--variants '[{}, {"shape": "ellipse"}]']

Detection runs once per set at the shipped defaults (``Params()``, every class, production floors) and is
cached as JSON in ``--cache``; each variant is a dict of ``[mask]`` keys laid over the defaults. Both
figures come from the functions ``veil eval`` uses (``plan_regions`` and ``coverage``), so a row here is
what ``veil eval`` reports with that ``[mask]`` section, without re-running the detectors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect.engine import Engine
from pipeline.eval.images import COVERED
from pipeline.mask import coverage, plan_regions
from pipeline.media.image import load_image
from pipeline.params import MaskParams, Params, RuntimeParams
from pipeline.records import Detections

DEFAULT_VARIANTS = [
    {},
    {"shape": "ellipse"},
    {"face_margin": 0.15},
    {"square_faces": False, "face_margin": 0.3},
    {"mask_review_band": False},
    {"margin": 0.1},
]


def cached_detections(set_dir: Path, cache: Path, params: Params) -> dict[str, dict]:
    """Per image id: its shape and the detections ``process`` would mask from (cut at the production floors)."""
    path = cache / f"{set_dir.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    engine = Engine.load(params.detector, RuntimeParams())
    gt = json.loads((set_dir / "annotations.json").read_text())
    rows = {}
    for info in gt["images"]:
        loaded = load_image(set_dir / "images" / info["file_name"], params.output.max_pixels)
        shipped = engine.merged(engine.at_review_floors(engine.candidates(loaded.rgb)))
        rows[str(info["id"])] = {"shape": list(loaded.rgb.shape), "boxes": shipped.boxes.tolist(),
                                 "scores": shipped.scores.tolist(), "classes": shipped.classes.tolist()}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


def score(set_dir: Path, detections: dict[str, dict], params: Params) -> tuple[float, int, float]:
    """Mask recall (boxes >= COVERED), leaking boxes, and the share of image area masked outside ground truth."""
    gt = json.loads((set_dir / "annotations.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for annotation in gt["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    coverages, outside, pixels = [], 0, 0
    for info in gt["images"]:
        row = detections[str(info["id"])]
        shape = tuple(row["shape"])
        found = Detections(np.array(row["boxes"]).reshape(-1, 4), np.array(row["scores"]), np.array(row["classes"]))
        covered = coverage(shape, plan_regions(found, params, shape), params.mask)
        labelled = np.zeros(shape[:2], dtype=bool)
        for annotation in by_image.get(info["id"], []):
            x, y, w, h = annotation["bbox"]
            x0, y0, x1, y1 = max(0, int(np.floor(x))), max(0, int(np.floor(y))), int(np.ceil(x + w)), int(np.ceil(y + h))
            region = covered[y0:y1, x0:x1]
            coverages.append(region.mean() if region.size else 1.0)
            labelled[y0:y1, x0:x1] = True
        outside += int((covered & ~labelled).sum())
        pixels += covered.size
    shares = np.array(coverages)
    return float((shares >= COVERED).mean()), int((shares < COVERED).sum()), outside / max(1, pixels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--cache", type=Path, default=Path("reports/frontier"))
    parser.add_argument("--sets", default="", help="comma-separated set names (default: every set found)")
    parser.add_argument("--variants", default=json.dumps(DEFAULT_VARIANTS), help="JSON list of [mask] overrides")
    args = parser.parse_args()
    wanted = [s for s in args.sets.split(",") if s]
    sets = [d for d in sorted(args.eval_root.iterdir()) if (d / "annotations.json").exists() and (not wanted or d.name in wanted)]
    variants = json.loads(args.variants)
    print("| set | [mask] overrides | mask recall | leaks | masked outside GT |\n|---|---|---|---|---|")
    for set_dir in sets:
        detections = cached_detections(set_dir, args.cache, Params())
        for variant in variants:
            recall, leaks, outside = score(set_dir, detections, Params(mask=MaskParams(**variant)))
            print(f"| {set_dir.name} | `{json.dumps(variant)}` | {recall:.2%} | {leaks} | {outside:.2%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
