"""Detections of a whole evaluation set, computed once at the shipped defaults and cached as JSON, for the
studies that lay settings over them (tools/mask_frontier.py, tools/leak_signals.py, tools/mirror_signal.py).

The cache holds every candidate down to the evaluation's AP floor, before the cross-window merge, so a study
can cut them at the production floors and merge them exactly as ``process`` does (``shipped``), or look at
what lies below those floors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pipeline.detect.engine import Engine, at_floors
from pipeline.detect.nms import merge
from pipeline.detect.runtime import RuntimeParams
from pipeline.eval.images import AP_FLOOR, annotations_per_image, label_bounds
from pipeline.mask import coverage, plan_regions
from pipeline.media.image import load_image
from pipeline.params import Params
from pipeline.records import Detections, ObjectClass


def cached_candidates(set_dir: Path, cache: Path, params: Params) -> dict[str, tuple[tuple[int, ...], Detections]]:
    """Per image id: its shape, and every candidate down to ``AP_FLOOR`` of the shipped detectors."""
    path = cache / f"{set_dir.name}.candidates.json"
    if not path.exists():
        engine = Engine.load(params.detector, RuntimeParams())
        gt = json.loads((set_dir / "annotations.json").read_text())
        rows = {}
        for info in gt["images"]:
            loaded = load_image(set_dir / "images" / info["file_name"], params.output.max_pixels)
            found = engine.candidates(loaded.rgb, min_score=AP_FLOOR)
            rows[str(info["id"])] = {"shape": list(loaded.rgb.shape), "boxes": found.boxes.tolist(),
                                     "scores": found.scores.tolist(), "classes": found.classes.tolist()}
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))
    return {
        image_id: (tuple(row["shape"]), Detections(np.array(row["boxes"], dtype=np.float32).reshape(-1, 4),
                                                   np.array(row["scores"], dtype=np.float32),
                                                   np.array(row["classes"], dtype=np.int64)))
        for image_id, row in json.loads(path.read_text()).items()
    }


def above(candidates: Detections, params: Params, floors: dict[ObjectClass, float] | None = None) -> Detections:
    """The candidates at or above each class's floor (default: its review floor), merged as ``detect`` merges
    them: with the review floors this is exactly what ``process`` masks from."""
    return merge(at_floors(candidates, params.detector, floors), params.detector.nms_iou)


def shipped_coverage(shape: tuple[int, ...], candidates: Detections, params: Params) -> np.ndarray:
    """The pixels the masks planned from ``candidates`` at ``params`` cover, as ``process`` plans them."""
    return coverage(shape, plan_regions(above(candidates, params), params, shape), params.mask)


def annotations_by_image(set_dir: Path) -> tuple[list[dict], dict[int, list[dict]]]:
    """The set's images, and its annotations per image id."""
    gt = json.loads((set_dir / "annotations.json").read_text())
    return gt["images"], annotations_per_image(gt)


def box_coverages(covered: np.ndarray, annotations: list[dict]) -> list[float]:
    """The share of each annotation's box that ``covered`` (a boolean mask of the image) covers."""
    shares = []
    for annotation in annotations:
        x0, y0, x1, y1 = label_bounds(annotation, covered.shape)
        region = covered[y0:y1, x0:x1]
        shares.append(float(region.mean()) if region.size else 1.0)
    return shares


def study_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every study over the cached sets takes: where the sets are, the cache, which sets."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--cache", type=Path, default=Path("reports/frontier"))
    parser.add_argument("--sets", default="", help="comma-separated set names (default: every set found)")
    return parser


def chosen_sets(args: argparse.Namespace) -> list[Path]:
    """The annotated sets under ``--eval-root`` that ``--sets`` names (all of them when it names none)."""
    wanted = [s for s in args.sets.split(",") if s]
    return [d for d in sorted(args.eval_root.iterdir())
            if (d / "annotations.json").exists() and (not wanted or d.name in wanted)]
