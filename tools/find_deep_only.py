"""Photos whose labelled faces (or plates) the photo plan finds but the light video-frame plan misses.

Each photo is scaled as ``veil eval-video`` first shows it in a clip of the given size (most of the photo in
view), then searched twice with the shipped detector: the video frame plan (``Params().video.scales``) and
the photo plan (``Params().detector``). A labelled object counts as deep-only when a confident photo-plan
detection overlaps it (IoU >= 0.3) and no light-plan detection down to the review floor does. These photos
make the hardest clips for the keyframe deep pass (``pipeline/eval/video.py``, set "deep").

    .venv/bin/python tools/find_deep_only.py [--size 1280x720] [--sets cmu_mit_faces,rbnr_faces,dlib_faces_voc]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.detect.engine import Engine
from pipeline.eval.video import load_specs
from pipeline.params import Params
from pipeline.records import ObjectClass
from pipeline.track.matching import overlapped

MATCH_IOU = 0.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--sets", default="cmu_mit_faces,rbnr_faces,dlib_faces_voc")
    parser.add_argument("--class", dest="label", default="face", choices=[c.label for c in ObjectClass])
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    object_class = ObjectClass.from_label(args.label)
    params = Params()
    engine = Engine.load(params.detector)
    light = params.video.frame_plans()
    threshold = params.detector.thresholds(object_class).threshold
    for name in args.sets.split(","):
        for spec in load_specs(args.shared_eval / name, (object_class,)):
            photo = cv2.cvtColor(cv2.imread(str(spec.photo), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            scale = min(width / (0.8 * photo.shape[1]), height / (0.8 * photo.shape[0]))
            frame = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            truth = spec.boxes * scale
            seen = engine.detect(frame, scales=light, only=frozenset({object_class}))
            deep = engine.detect(frame, only=frozenset({object_class}))
            deep_boxes = deep.boxes[deep.scores >= threshold]
            found_deep = overlapped(truth, deep_boxes, MATCH_IOU)
            found_light = overlapped(truth, seen.boxes, MATCH_IOU)
            deep_only = int((found_deep & ~found_light).sum())
            if deep_only:
                print(f"{spec.name}: {deep_only} of {len(truth)} labelled {args.label}(s) deep-only "
                      f"(smallest {np.min(truth[:, 2:] - truth[:, :2]):.0f} px)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
