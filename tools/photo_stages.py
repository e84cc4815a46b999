#!/usr/bin/env python3
"""Where a photo's time goes: each part of the photo path timed alone, in one process, on the same photos.

    .venv/bin/python tools/photo_stages.py bench/.work/sets/mp1-2/images   # the photos bench/images.py built

Prints the mean and median per photo of the shipped face plan, one whole-image plate pass (no tiles), the
shipped plate plan (whole pass and 2x tiles) and the plate cross-check's cascade, over two rounds after a warm-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect.cascade import plate_cascade_finds
from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.media.image import load_image
from pipeline.params import Params
from pipeline.records import ObjectClass

FACE, PLATE = frozenset({ObjectClass.FACE}), frozenset({ObjectClass.LICENSE_PLATE})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path, help="a folder of JPEG photos")
    args = parser.parse_args()
    params = Params()
    engine = Engine.load(params.detector, RuntimeParams())
    plate_plan = params.detector.per_class["license_plate"].scales
    whole_pass = {ObjectClass.LICENSE_PLATE: plate_plan.model_copy(update={"upscale_below": 0, "tile_above": 10**6})}
    neighbours = params.review.plate_cross_check_neighbors
    stages: dict[str, Callable[[np.ndarray], object]] = {
        "face plan (shipped)": lambda rgb: engine.detect(rgb, only=FACE),
        "plate: one whole-image pass": lambda rgb: engine.detect(rgb, only=PLATE, scales=whole_pass),
        "plate plan (shipped)": lambda rgb: engine.detect(rgb, only=PLATE),
        "plate cross-check (cascade)": lambda rgb: plate_cascade_finds(rgb, neighbours),
    }
    photos = [load_image(path, params.output.max_pixels).rgb for path in sorted(args.photos.glob("*.jpg"))]
    if not photos:
        parser.error(f"no .jpg in {args.photos}")
    engine.detect(photos[0])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(2):
        for rgb in photos:
            for name, stage in stages.items():
                start = time.perf_counter()
                stage(rgb)
                seconds[name].append(time.perf_counter() - start)
    print(f"{len(photos)} photos, mean {np.mean([p.shape[0] * p.shape[1] for p in photos]) / 1e6:.1f} MP")
    for name, values in seconds.items():
        print(f"{name:30} mean {np.mean(values) * 1000:6.0f} ms   median {np.median(values) * 1000:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
