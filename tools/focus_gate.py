#!/usr/bin/env python3
"""Which photos the focus gate calls out of focus, on every set as it is and degraded every other way.

    .venv/bin/python tools/focus_gate.py [--eval-root ../shared/eval] [--every 2] [--kinds none,blur,...]

The gate (pipeline/detect/focus.py: a blur effect of ``BLURRED`` or more, or a streak of ``STREAKED`` or more)
sharpens a photo for the plate detector and, with ``review.out_of_focus``, sends it to review. Each photo is
degraded and re-encoded as tools/build_harder_set.py writes it, in memory. Prints per set and degradation the
share of photos the gate takes, the largest blur effect and the largest streak (either way).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect import focus
from pipeline.eval.degraded import DEGRADATIONS
from pipeline.eval.derived import jpeg_bytes
from pipeline.eval.images import every_nth_image

KINDS = ("none", "jpeg_q20", "downscale", "grayscale_ir", "darken", "night", "blur", "motion")


def measures(set_dir: Path, every: int, kind: str) -> list[focus.Blur]:
    degradation = DEGRADATIONS[kind]
    gt = every_nth_image(json.loads((set_dir / "annotations.json").read_text()), every)
    blurs = []
    for image in gt["images"]:
        rgb = np.asarray(Image.open(set_dir / "images" / image["file_name"]).convert("RGB"))
        encoded = jpeg_bytes(np.ascontiguousarray(degradation.pixels(rgb)), degradation.jpeg_quality)
        blurs.append(focus.measure(np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))))
    return blurs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated degradations (default: all)")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    print("| set (photos) | " + " | ".join(kinds) + " |\n|---|" + "---|" * len(kinds))
    for set_dir in sorted(d for d in args.eval_root.iterdir() if (d / "annotations.json").exists()):
        cells, photos = [], 0
        for kind in kinds:
            blurs = measures(set_dir, args.every, kind)
            photos = len(blurs)
            taken = np.mean([blur.out_of_focus for blur in blurs])
            effect, streak = max(blur.effect for blur in blurs), max(abs(blur.streak) for blur in blurs)
            cells.append(f"{taken:.0%} ({effect:.2f}, {streak:.2f})")
        print(f"| {set_dir.name} ({photos}) | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
