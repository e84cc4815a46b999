"""Quality of the image pipeline on a COCO-format set: AP (pycocotools), operating-point precision and
recall, mask recall (ground truth covered by the masks actually applied) and the area masked needlessly.

The same detection, banding and masking code as ``process_file`` runs here; only the pixels are not saved.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from pipeline import __version__
from pipeline.detect import focus
from pipeline.detect.cascade import cross_check_plates
from pipeline.detect.engine import Engine
from pipeline.detect.nms import iou_matrix
from pipeline.mask import coverage, pixel_bounds, plan_regions, unmasked
from pipeline.media.image import load_image
from pipeline.params import Params
from pipeline.records import Detections, ObjectClass
from pipeline.report import Finding, photo_findings
from pipeline.report import routed as routed_by

COVERED = 0.9  # a ground-truth box counts as masked when at least this share of its area is covered
AP_FLOOR = 0.05  # detections down to this score feed the AP computation (masking uses the real thresholds)


class ClassResult(BaseModel):
    object_class: str
    ground_truth: int
    ap50: float
    ap50_95: float
    threshold: float
    precision_at_threshold: float
    recall_at_threshold: float
    review_floor: float
    precision_at_floor: float
    recall_at_floor: float
    mask_recall: float
    mask_leaks: int
    mean_coverage: float
    pr_curve: list[float]  # precision at recall 0.00, 0.01, ... 1.00 (IoU 0.5), -1 where undefined


class ReviewRouting(BaseModel):
    """The review router as a classifier of leaks: which files the profile's review policy sends to review,
    against which files leak (some ground-truth box not masked)."""

    policy: str
    routed: int  # files sent to review
    review_rate: float  # routed / files
    leaking: int  # files with a leak
    captured: int  # leaking files routed
    leak_capture: float | None  # captured / leaking; None without leaks
    reasons: dict[str, int]  # files per kind of reason (a file may have several)
    review_rate_strict: float  # what "strict" (every review-band detection) would route, for comparison
    files: dict[str, list[str]] = Field(default_factory=dict)  # each routed file: the reasons it went to review, as its sidecar gives them


class EvalReport(BaseModel):
    veil_version: str
    ground_truth: str
    images: int
    seconds: float
    images_per_second: float
    match_iou: float
    models: list[dict]
    params: dict
    classes: list[ClassResult]
    masked_area_share: float  # of all image area, the share masked
    masked_outside_gt_share: float  # of all image area, the share masked outside any ground-truth box
    leaked_boxes: list[dict]  # image file and box of each ground-truth box not covered
    review: ReviewRouting


@dataclass(frozen=True)
class _ImageResult:
    image_id: int
    file_name: str
    detections: Detections
    box_coverage: np.ndarray  # per ground-truth annotation, in the order of ``annotations``
    annotations: list[dict]
    masked_pixels: int
    masked_outside_gt: int
    pixels: int
    findings: list[Finding]  # the uncertain findings of the masked detections (pipeline/report.py)

    @property
    def leaks(self) -> bool:
        return bool((self.box_coverage < COVERED).any())


def label_bounds(annotation: dict, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The pixels a COCO annotation's box covers, as slice bounds clipped to the image."""
    x, y, w, h = annotation["bbox"]
    return pixel_bounds((x, y, x + w, y + h), shape)


def annotations_per_image(gt: dict) -> dict[int, list[dict]]:
    """A COCO ground truth's annotations, per image id."""
    by_image: dict[int, list[dict]] = {}
    for annotation in gt["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    return by_image


def every_nth_image(gt: dict, every: int) -> dict:
    """A COCO ground truth cut to every ``every``-th image by id, with those images' annotations (the fixed
    subsets CI runs)."""
    images = sorted(gt["images"], key=lambda image: image["id"])[::every]
    kept = {image["id"] for image in images}
    return {**gt, "images": images, "annotations": [a for a in gt["annotations"] if a["image_id"] in kept]}


def evaluate(
    gt_path: Path,
    images_dir: Path,
    params: Params,
    engine: Engine,
    *,
    match_iou: float = 0.5,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> EvalReport:
    gt = json.loads(gt_path.read_text())
    by_image = annotations_per_image(gt)
    started = time.monotonic()
    results = [_evaluate_image(info, by_image.get(info["id"], []), images_dir, params, engine)
               for info in progress(gt["images"])]
    seconds = time.monotonic() - started

    annotated = {a["category_id"] for a in gt["annotations"]}
    present = sorted(c for c in map(ObjectClass.from_label, params.detector.classes) if c in annotated)
    classes = [_class_result(object_class, gt_path, results, params, match_iou) for object_class in present]
    total_pixels = sum(r.pixels for r in results) or 1
    leaks = [
        {"image": r.file_name, "class": ObjectClass(a["category_id"]).label, "bbox": a["bbox"], "coverage": round(float(c), 3)}
        for r in results for a, c in zip(r.annotations, r.box_coverage) if c < COVERED
    ]
    return EvalReport(
        veil_version=__version__, ground_truth=str(gt_path), images=len(results), seconds=round(seconds, 2),
        images_per_second=round(len(results) / max(seconds, 1e-9), 3), match_iou=match_iou,
        models=[m.model_dump() for m in engine.model_records], params=params.model_dump(mode="json"),
        classes=classes,
        masked_area_share=round(sum(r.masked_pixels for r in results) / total_pixels, 5),
        masked_outside_gt_share=round(sum(r.masked_outside_gt for r in results) / total_pixels, 5),
        leaked_boxes=leaks, review=_review_routing(results, params.review.policy),
    )


def _review_routing(results: list[_ImageResult], policy: str) -> ReviewRouting:
    routed_kinds = [{f.kind for f in r.findings if routed_by(f, policy)} for r in results]  # per file
    routed = [r for r, kinds in zip(results, routed_kinds) if kinds]
    leaking = [r for r in results if r.leaks]
    captured = sum(1 for r in routed if r.leaks)
    reasons = Counter(kind for kinds in routed_kinds for kind in kinds)
    strict = sum(1 for r in results if any(routed_by(f, "strict") for f in r.findings))
    files = max(1, len(results))
    return ReviewRouting(
        policy=policy, routed=len(routed), review_rate=round(len(routed) / files, 4), leaking=len(leaking),
        captured=captured, leak_capture=round(captured / len(leaking), 4) if leaking else None,
        reasons=dict(reasons), review_rate_strict=round(strict / files, 4),
        files={r.file_name: [f.text for f in r.findings if routed_by(f, policy)] for r in routed},
    )


def _evaluate_image(info: dict, annotations: list[dict], images_dir: Path, params: Params, engine: Engine) -> _ImageResult:
    loaded = load_image(images_dir / info["file_name"], params.output.max_pixels)
    shape = loaded.rgb.shape
    # One detection pass serves both figures: every candidate down to AP_FLOOR feeds the PR curve, while the
    # masks are planned from the candidates at the production floors, exactly as process_file plans them.
    candidates = engine.candidates(loaded.rgb, min_score=AP_FLOOR)
    detections = engine.merged(candidates)
    shipped = engine.merged(engine.at_review_floors(candidates))
    covered = coverage(shape, plan_regions(shipped, params, shape), params.mask)
    gt_area = np.zeros(shape[:2], dtype=bool)
    box_coverage = []
    for annotation in annotations:
        x0, y0, x1, y1 = label_bounds(annotation, shape)
        region = covered[y0:y1, x0:x1]
        box_coverage.append(region.mean() if region.size else 1.0)
        gt_area[y0:y1, x0:x1] = True
    return _ImageResult(
        info["id"], info["file_name"], detections, np.array(box_coverage), annotations,
        int(covered.sum()), int((covered & ~gt_area).sum()), covered.size,
        photo_findings(shipped, params, len(unmasked(cross_check_plates(loaded.rgb, params), covered)),
                       focus.measure(loaded.rgb)),
    )


def _class_result(object_class: ObjectClass, gt_path: Path, results: list[_ImageResult], params: Params, match_iou: float) -> ClassResult:
    ap50, ap50_95, curve = _coco_ap(gt_path, results, object_class)
    bounds = params.detector.thresholds(object_class)
    coverages = np.concatenate([
        r.box_coverage[[a["category_id"] == object_class for a in r.annotations]] for r in results
    ]) if results else np.zeros(0)
    p_thr, r_thr = _precision_recall(results, object_class, bounds.threshold, match_iou)
    p_floor, r_floor = _precision_recall(results, object_class, bounds.review_floor, match_iou)
    return ClassResult(
        object_class=object_class.label, ground_truth=len(coverages), ap50=ap50, ap50_95=ap50_95,
        threshold=bounds.threshold, precision_at_threshold=p_thr, recall_at_threshold=r_thr,
        review_floor=bounds.review_floor, precision_at_floor=p_floor, recall_at_floor=r_floor,
        mask_recall=round(float((coverages >= COVERED).mean()) if len(coverages) else 1.0, 4),
        mask_leaks=int((coverages < COVERED).sum()),
        mean_coverage=round(float(coverages.mean()) if len(coverages) else 1.0, 4),
        pr_curve=curve,
    )


def _coco_ap(gt_path: Path, results: list[_ImageResult], object_class: ObjectClass) -> tuple[float, float, list[float]]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    detections = [
        {"image_id": r.image_id, "category_id": int(object_class), "score": float(s),
         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
        for r in results for b, s in zip(*_of_class(r.detections, object_class))
    ]
    if not detections:
        return 0.0, 0.0, [0.0] * 101
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.catIds = [int(object_class)]
        evaluator.params.imgIds = [r.image_id for r in results]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    curve = evaluator.eval["precision"][0, :, 0, 0, -1]  # IoU 0.5, all recalls, class, all areas, most dets
    return round(float(evaluator.stats[1]), 4), round(float(evaluator.stats[0]), 4), [round(float(p), 4) for p in curve]


def _of_class(detections: Detections, object_class: ObjectClass) -> tuple[np.ndarray, np.ndarray]:
    chosen = detections.of_class(object_class)
    return chosen.boxes, chosen.scores


def _precision_recall(
    results: list[_ImageResult], object_class: ObjectClass, min_score: float, match_iou: float
) -> tuple[float, float]:
    """Greedy one-to-one matching of detections (best score first) to ground truth at ``match_iou``."""
    true_positive = predicted = expected = 0
    for result in results:
        boxes, scores = _of_class(result.detections, object_class)
        order = np.argsort(-scores, kind="stable")
        boxes = boxes[order][scores[order] >= min_score]
        truth = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in result.annotations if a["category_id"] == object_class], dtype=np.float32).reshape(-1, 4)
        predicted += len(boxes)
        expected += len(truth)
        if not len(boxes) or not len(truth):
            continue
        overlaps = iou_matrix(boxes, truth)
        taken = np.zeros(len(truth), dtype=bool)
        for row in overlaps:
            candidates = np.where(~taken & (row >= match_iou))[0]
            if len(candidates):
                taken[candidates[np.argmax(row[candidates])]] = True
                true_positive += 1
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / expected if expected else 1.0
    return round(precision, 4), round(recall, 4)


def plot_precision_recall(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=100)
    recall = np.linspace(0, 1, 101)
    for result in report.classes:
        curve = np.array(result.pr_curve)
        valid = curve >= 0
        line = axes.plot(recall[valid], curve[valid], label=f"{result.object_class} (AP50 {result.ap50:.3f})")[0]
        axes.scatter([result.recall_at_threshold], [result.precision_at_threshold], color=line.get_color(), marker="o",
                     label=f"{result.object_class} at threshold {result.threshold:.2f}")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01),
             title=f"{Path(report.ground_truth).parent.name}: precision-recall at IoU 0.5")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
