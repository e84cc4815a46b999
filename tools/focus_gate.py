#!/usr/bin/env python3
"""Which photos the focus gate calls out of focus, on every set as it is and degraded every other way.

    .venv/bin/python tools/focus_gate.py [--eval-root ../shared/eval] [--every 2] [--kinds none,blur,...]

The gate (pipeline/detect/focus.py, a blur effect of ``BLURRED`` or more) sharpens a photo for the plate
detector and, with ``review.out_of_focus``, sends it to review. Each photo is degraded and re-encoded as
tools/build_harder_set.py writes it, in memory. Prints per set and degradation the share of photos at or over
the gate, and the largest blur effect.
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
from pipeline.eval.degraded import DEGRADATIONS, jpeg_bytes
from pipeline.eval.images import every_nth_image

KINDS = ("none", "jpeg_q20", "downscale", "grayscale_ir", "darken", "night", "blur", "motion")


def blur_effects(set_dir: Path, every: int, kind: str) -> list[float]:
    degradation = DEGRADATIONS[kind]
    gt = every_nth_image(json.loads((set_dir / "annotations.json").read_text()), every)
    effects = []
    for image in gt["images"]:
        rgb = np.asarray(Image.open(set_dir / "images" / image["file_name"]).convert("RGB"))
        encoded = jpeg_bytes(np.ascontiguousarray(degradation.pixels(rgb)), degradation.jpeg_quality)
        effects.append(focus.blur_effect(np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))))
    return effects


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
            effects = np.array(blur_effects(set_dir, args.every, kind))
            photos = len(effects)
            cells.append(f"{(effects >= focus.BLURRED).mean():.0%} ({effects.max():.2f})")
        print(f"| {set_dir.name} ({photos}) | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
