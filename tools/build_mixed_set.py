"""Build the mixed-scene development set: real faces feathered into plate photos (pipeline/eval/mixed_scenes.py).

Faces are cut (with a soft margin) from ../shared/eval/rbnr_faces and dlib_faces_voc and pasted, 1-3 per
photo, into openalpr_endtoend, ucsd_lp and ccpd_sample, beside the labelled plate. Writes OUT/images/ and
OUT/annotations.json (COCO: category 1 = face, 2 = license_plate), ready for ``veil eval``:

    .venv/bin/python tools/build_mixed_set.py --out /tmp/mixed [--eval-root ../shared/eval] [--count N] [--seed 0]
    .venv/bin/veil eval --gt /tmp/mixed/annotations.json --images /tmp/mixed/images --report r.json

The same seed gives the same images and boxes; --count picks that many plate photos (seeded), and a scene
does not depend on --count.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pipeline.eval.mixed_scenes import build_mixed_set


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-root", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=None, help="plate photos to use (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.eval_root / "README.md").is_file():
        parser.error(f"no evaluation data in {args.eval_root}")
    path = build_mixed_set(args.eval_root, args.out, count=args.count, seed=args.seed)
    data = json.loads(path.read_text())
    faces = sum(1 for a in data["annotations"] if a["category_id"] == 1)
    plates = len(data["annotations"]) - faces
    print(f"{path}: {len(data['images'])} images, {faces} faces, {plates} plates, "
          f"{len(data['info']['skipped'])} photos skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
