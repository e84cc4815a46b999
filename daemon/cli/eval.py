"""``veil eval --gt COCO.json --images DIR``: measure the image pipeline on an annotated set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from pipeline.eval.images import COVERED, EvalReport, evaluate, plot_precision_recall

from daemon.cli.process import add_params_arguments, load_from_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="measure recall, precision, AP and mask recall on a COCO set",
                                   description=__doc__)
    parser.add_argument("--gt", type=Path, required=True, help="COCO JSON (1 = face, 2 = license_plate)")
    parser.add_argument("--images", type=Path, required=True, help="folder the file names are relative to")
    parser.add_argument("--report", type=Path, default=None, help="JSON report path (a PNG plot is written beside it)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU for operating-point matching (0.3 for loose boxes)")
    add_params_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Every configured class is searched, as in production (--classes narrows it for a study of one part);
    # each class the ground truth labels is scored.
    if (loaded := load_from_arguments(args)) is None:
        return 2
    params, engine = loaded
    progress = (lambda items: tqdm(items, unit="image")) if sys.stderr.isatty() else (lambda items: items)
    report = evaluate(args.gt, args.images, params, engine, match_iou=args.iou, progress=progress)
    print_summary(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report.model_dump_json(indent=2))
        plot = args.report.with_suffix(".png")
        plot_precision_recall(report, plot)
        print(f"report: {args.report}\nplot:   {plot}")
    return 0


def print_summary(report: EvalReport) -> None:
    print(f"{report.images} images in {report.seconds:.1f} s ({report.images_per_second:.2f} images/s), "
          f"match IoU {report.match_iou}")
    header = f"{'class':<14}{'GT':>5}{'AP50':>8}{'AP':>8}{'P@thr':>8}{'R@thr':>8}{'R@floor':>9}{'mask recall':>13}{'leaks':>7}"
    print(header)
    for c in report.classes:
        print(f"{c.object_class:<14}{c.ground_truth:>5}{c.ap50:>8.3f}{c.ap50_95:>8.3f}{c.precision_at_threshold:>8.3f}"
              f"{c.recall_at_threshold:>8.3f}{c.recall_at_floor:>9.3f}{c.mask_recall:>13.4f}{c.mask_leaks:>7}")
    print(f"masked area: {report.masked_area_share:.2%} of all pixels, {report.masked_outside_gt_share:.2%} outside "
          f"ground truth (mask recall: ground-truth boxes >= {COVERED:.0%} covered)")
    review = report.review
    capture = "no leaking file" if review.leak_capture is None else f"{review.leak_capture:.0%} ({review.captured}/{review.leaking})"
    why = ", ".join(f"{kind}: {files}" for kind, files in sorted(review.reasons.items())) or "-"
    print(f"review ({review.policy}): {review.review_rate:.1%} of files routed ({review.routed}/{report.images}; "
          f"'strict' would route {review.review_rate_strict:.1%}), leak capture {capture}; reasons: {why}")
