"""What the face plan's extra views cost, in one run: the quarter turns (``rotate_90``, for photos saved on their
side) or the 45-degree tilts (``tilt_45``, for faces leaning over).

    .venv/bin/python bench/face_views.py [--view rotate_90|tilt_45] [--photos N] [--rounds R] [--eval-root ../shared/eval]

The shipped engine (``Params()``, every class) and the same engine with that view off (``--view``, default
``rotate_90``) detect the same real photos (an even spread over every annotated set, decoded once), alternating
photo by photo over several rounds so that both see the same load on the machine. Prints seconds per photo for
each and their ratio, over all the photos and per set. It asserts nothing; the ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.detect.engine import Engine
from pipeline.media.image import load_image
from pipeline.params import Params


def sample(eval_root: Path, per_set: int) -> list[tuple[str, Path]]:
    """``per_set`` photos of each annotated set, spread evenly by id."""
    chosen = []
    for folder in sorted(d for d in eval_root.iterdir() if (d / "annotations.json").is_file()):
        images = sorted(json.loads((folder / "annotations.json").read_text())["images"], key=lambda i: i["id"])
        step = max(1, len(images) // per_set)
        chosen += [(folder.name, folder / "images" / info["file_name"]) for info in images[::step][:per_set]]
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--view", choices=["rotate_90", "tilt_45"], default="rotate_90", help="the face view to weigh")
    parser.add_argument("--photos", type=int, default=4, help="photos per set")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--eval-root", type=Path, default=REPO / ".." / "shared" / "eval")
    args = parser.parse_args()
    shipped = Params()
    without = Params.model_validate({"detector": {"per_class": {"face": {"scales": {args.view: False}}}}})
    engines = {f"shipped ({args.view})": Engine.load(shipped.detector),
               f"{args.view} = false": Engine.load(without.detector)}
    photos = [(name, load_image(path, shipped.output.max_pixels).rgb) for name, path in sample(args.eval_root, args.photos)]
    for engine in engines.values():
        engine.detect(photos[0][1])  # warm up: first-call allocations are not the photo's cost
    seconds: dict[str, dict[str, float]] = {label: {} for label in engines}
    for _ in range(args.rounds):
        for name, rgb in photos:
            for label, engine in engines.items():
                start = time.perf_counter()
                engine.detect(rgb)
                seconds[label][name] = seconds[label].get(name, 0.0) + time.perf_counter() - start
    count = {name: sum(1 for n, _ in photos if n == name) * args.rounds for name, _ in photos}
    (on, on_s), (off, off_s) = seconds.items()
    print(f"{len(photos)} photos x {args.rounds} rounds, seconds per photo: {on} / {off} (ratio)")
    for name in count:
        print(f"  {name:20} {on_s[name] / count[name]:6.3f} / {off_s[name] / count[name]:6.3f}  ({on_s[name] / off_s[name]:.2f}x)")
    total_on, total_off, total = sum(on_s.values()), sum(off_s.values()), sum(count.values())
    print(f"  {'all':20} {total_on / total:6.3f} / {total_off / total:6.3f}  ({total_on / total_off:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
