"""What a leaning shot's tilted light passes buy and cost: the tilted deep set of ``veil eval-video`` at the
shipped defaults (the light passes get the tilted view their faces lean by), again with both tilted views on
every leaning light pass (as shipped before 6 December), and with the 45-degree views on keyframes only
(``TiltedViews.light_plans`` patched to hand the light plans back upright), in one process, so the times
compare. The first time includes rendering the clips, the same for all; the second is process_video's alone.

    .venv/bin/python tools/leaning_cost.py [--size 1280x720] [--tilt 45] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.detect.engine import Engine
from pipeline.eval.video import DEFAULT_SETS, Motion, run_set
from pipeline.params import Params, ScalePlan
from pipeline.records import ObjectClass
from pipeline.video.keyframes import TiltedViews

Plans = dict[ObjectClass, ScalePlan]

SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-eval", type=Path, default=SHARED_EVAL)
    parser.add_argument("--size", default="1280x720", help="clip size WxH")
    parser.add_argument("--tilt", type=float, default=45.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    deep = dataclasses.replace(next(s for s in DEFAULT_SETS if s.name == "deep"), size=(width, height))
    params = Params()
    engine = Engine.load(params.detector)
    shipped = TiltedViews.light_plans
    ways = {"shipped": shipped, "both ways": both_ways(shipped), "keyframes only": lambda self, plans: plans}
    for round_number in range(args.rounds):
        for name, light_plans in ways.items():
            TiltedViews.light_plans = light_plans  # type: ignore[method-assign]
            with tempfile.TemporaryDirectory() as work:
                started = time.perf_counter()
                _, results = run_set(deep, args.shared_eval, Path(work), params, engine, motion=Motion(tilt_deg=args.tilt))
                seconds = time.perf_counter() - started
            masked, total = sum(r.masked_box_frames for r in results), sum(r.box_frames for r in results)
            routed = sum(r.disposition == "review" for r in results)
            processing = sum(r.seconds for r in results)
            print(f"round {round_number + 1}, {name}: {seconds:.1f} s ({processing:.1f} s processing), "
                  f"box-frames masked {masked}/{total} "
                  f"({masked / total:.2%}), {routed}/{len(results)} clips routed", flush=True)
        TiltedViews.light_plans = shipped  # type: ignore[method-assign]


def both_ways(light_plans: Callable[[TiltedViews, Plans], Plans]) -> Callable[[TiltedViews, Plans], Plans]:
    """``light_plans`` with both tilted views wherever it tilts the face plan."""

    def both(self: TiltedViews, plans: Plans) -> Plans:
        tilted = light_plans(self, plans)
        face = tilted.get(ObjectClass.FACE)
        if face is None or not face.tilt_45:
            return tilted
        return {**tilted, ObjectClass.FACE: face.model_copy(update={"tilt_sides": (45, -45)})}

    return both


if __name__ == "__main__":
    main()
