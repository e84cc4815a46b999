"""Build a development set made harder: each photo of SET turned on its side (pipeline/eval/sideways.py),
tilted (pipeline/eval/tilted.py), underexposed, at night, overexposed, grainy, under a street lamp, blurred,
compressed, downscaled or far away (pipeline/eval/degraded.py), or its faces behind sunglasses or a face mask
or cut by the edge (pipeline/eval/occluded.py), its boxes following it. Ready for ``veil eval``:

    .venv/bin/python tools/build_harder_set.py --set ../shared/eval/cmu_mit_faces --kind night --out /tmp/night [--every N]
    .venv/bin/veil eval --gt /tmp/night/annotations.json --images /tmp/night/images --iou 0.3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.eval.degraded import DEGRADATIONS, build_degraded_set
from pipeline.eval.occluded import OCCLUSIONS, build_occluded_set
from pipeline.eval.sideways import build_sideways_set
from pipeline.eval.tilted import build_tilted_set

SIDEWAYS = "sideways"
TILTED = "tilted"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, required=True, help="a COCO set: annotations.json and images/")
    parser.add_argument("--kind", choices=[SIDEWAYS, TILTED, *sorted(DEGRADATIONS), *OCCLUSIONS], required=True)
    parser.add_argument("--degrees", type=float, default=30.0, help="--kind tilted: by how much, each way in turn")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--every", type=int, default=1, help="every n-th photo by id (default: all)")
    args = parser.parse_args(argv)
    if not (args.set / "annotations.json").is_file():
        parser.error(f"no annotations.json in {args.set}")
    if args.kind == SIDEWAYS:
        path = build_sideways_set(args.set, args.out, args.every)
    elif args.kind == TILTED:
        path = build_tilted_set(args.set, args.out, args.degrees, args.every)
    elif args.kind in OCCLUSIONS:
        path = build_occluded_set(args.set, args.out, args.kind, args.every)
    else:
        path = build_degraded_set(args.set, args.out, args.kind, args.every)
    data = json.loads(path.read_text())
    print(f"{path}: {len(data['images'])} images, {len(data['annotations'])} boxes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
