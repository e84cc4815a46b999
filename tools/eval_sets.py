#!/usr/bin/env python3
"""Every development set through ``veil eval`` at the shipped defaults: the figures docs/evaluation.md quotes.

    .venv/bin/python tools/eval_sets.py [--eval-root ../shared/eval] [--out reports/eval] [--every N]
                                        [--sets a,b] [--extra NAME=ANNOTATIONS.json ...]

Each set runs ``Params()`` with the default engine (every class searched on every photo) and is scored on
the classes its ground truth labels. ``--extra`` adds a set built elsewhere, for example the mixed scenes of
``tools/build_mixed_set.py``. Writes one JSON report and PR plot per set into ``--out`` and prints a
Markdown table. Cost on the 2-core machine: about an hour for all sets (openalpr_endtoend is most of it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect.engine import Engine
from pipeline.eval.images import evaluate, every_nth_image, plot_precision_recall
from pipeline.params import Params


def subset(gt_path: Path, every: int, into: Path) -> Path:
    if every == 1:
        return gt_path
    into.write_text(json.dumps(every_nth_image(json.loads(gt_path.read_text()), every)))
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=Path("reports/eval"))
    parser.add_argument("--every", type=int, default=1, help="every n-th image of each set (1: all)")
    parser.add_argument("--sets", default="", help="comma-separated set names (default: every set found)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=ANNOTATIONS",
                        help="another COCO set; its images are in images/ beside the annotations file")
    args = parser.parse_args()

    sets = {p.parent.name: p for p in sorted(args.eval_root.glob("*/annotations.json"))}
    for extra in args.extra:
        name, _, path = extra.partition("=")
        sets[name] = Path(path)
    if args.sets:
        sets = {name: path for name, path in sets.items() if name in args.sets.split(",")}
    if not sets:
        print(f"eval_sets: no sets under {args.eval_root}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    params = Params()
    engine = Engine.load(params.detector)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, gt_path in sets.items():
            gt = subset(gt_path, args.every, Path(tmp) / f"{name}.json")
            report = evaluate(gt, gt_path.parent / "images", params, engine)
            (args.out / f"{name}.json").write_text(report.model_dump_json(indent=2))
            plot_precision_recall(report, args.out / f"{name}.png")
            for result in report.classes:
                if result.ground_truth:
                    rows.append((name, result.object_class, report.images, result.ground_truth, result.mask_recall,
                                 result.mask_leaks, result.ap50, report.masked_outside_gt_share,
                                 report.images_per_second))
                    print(f"{name} {result.object_class}: mask recall {result.mask_recall:.2%} "
                          f"({result.mask_leaks} leaks), outside GT {report.masked_outside_gt_share:.1%}", flush=True)
    print("\n| set | class | images | GT boxes | mask recall | leaks | AP50 | outside GT | images/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, label, images, boxes, recall, leaks, ap50, outside, speed in rows:
        print(f"| {name} | {label} | {images} | {boxes} | {recall:.2%} | {leaks} | {ap50:.3f} | {outside:.1%} "
              f"| {speed:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
