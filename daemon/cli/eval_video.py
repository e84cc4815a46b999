"""``veil eval-video``: moving-camera clips rendered from ../shared/eval, run through the video pipeline.

Every set runs the shipped detector (both classes); each is scored on the class it labels. Prints, per set:
box-frame mask recall, the longest run of consecutive unmasked frames of any object, IDF1 / HOTA of the
tracks (TrackEval), and the review router as a leak classifier (clips routed; of the clips with an unmasked
box-frame, how many were routed). Exit status 1 when a set misses the targets.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

TARGET_RECALL = 0.9995  # of box-frames, on every set
TARGET_MAX_RUN = 1  # no object unmasked for 2 or more consecutive frames


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval-video", help="evaluate video masking on synthetic moving-camera clips")
    parser.add_argument("--shared-eval", type=Path, default=Path("../shared/eval"), help="evaluation data folder")
    parser.add_argument("--set", choices=["faces", "plates", "deep", "all"], default="all",
                        help="faces, plates (random photos of the dev sets), deep (photos whose faces only the "
                             "photo plan finds: the keyframe deep pass), or all")
    parser.add_argument("--clips", type=int, default=None, help="clips per set, one photo each (default: 8; deep: 3)")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: 60; deep: 90)")
    parser.add_argument("--size", default=None, help="clip size WxH (default: 640x360; deep: 1280x720)")
    parser.add_argument("--stride", type=int, default=None, help="detection stride (default: the setting's)")
    parser.add_argument("--plate-every", type=int, default=None,
                        help="plates on every k-th detected frame (default: the setting's)")
    parser.add_argument("--track-margin", type=float, default=None, help="extra margin on track masks (default: the setting's)")
    parser.add_argument("--tilt", type=float, default=0.0,
                        help="roll the camera this many degrees throughout: every face leaning over (default: 0)")
    parser.add_argument("--tilt-over", type=_frames, default=(0, 0), metavar="FIRST,LAST",
                        help="roll over to --tilt between these frames instead, mid-shot (default: from the start)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the clips and outputs in this folder")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.detect.engine import Engine
    from pipeline.eval.video import DEFAULT_SETS, Motion, run_set
    from pipeline.params import Params, VideoParams

    if not (args.shared_eval / "README.md").exists():
        print(f"eval-video: no evaluation data at {args.shared_eval}", file=sys.stderr)
        return 2
    chosen = [s for s in DEFAULT_SETS if args.set in ("all", s.name)]
    # The shipped detector on every set, every class searched on every clip; each set is scored on the class
    # its ground truth labels (the other class is not annotated there, and its masks cost nothing here).
    chosen_video = {"detect_stride": args.stride, "plate_every": args.plate_every, "track_margin": args.track_margin}
    video = VideoParams(**{k: v for k, v in chosen_video.items() if v is not None})
    video = video.model_copy(update={"lookahead_frames": max(video.lookahead_frames, video.plate_stride)})
    params = Params(video=video)
    engine = Engine.load(params.detector)
    summaries = {}
    failed = False
    for chosen_set in chosen:
        eval_set = replace(chosen_set, seed=args.seed, **_overrides(args))
        with tempfile.TemporaryDirectory(prefix="veil-eval-video-") as tmp:
            work = args.keep / eval_set.name if args.keep else Path(tmp)
            motion = Motion(tilt_deg=args.tilt, tilt_over=args.tilt_over)
            summary, _ = run_set(eval_set, args.shared_eval, work, params, engine, motion=motion, log=print)
        summaries[eval_set.name] = summary
        ok = (summary["mask_recall"] >= TARGET_RECALL and summary["longest_unmasked_run"] <= TARGET_MAX_RUN
              and not summary["objects_never_masked"])
        failed |= not ok
        print(_format(eval_set.name, summary, ok))
    if args.json:
        args.json.write_text(json.dumps({"stride": video.detect_stride, "plate_every": video.plate_every, "tilt": args.tilt,
                                         "tilt_over": list(args.tilt_over), "track_margin": video.track_margin,
                                         "sets": summaries}, indent=2))
    return 1 if failed else 0


def _overrides(args: argparse.Namespace) -> dict:
    """The set's own clip count, length and size, unless given on the command line."""
    chosen: dict = {"clips": args.clips, "frames": args.frames}
    if args.size:
        width, height = (int(v) for v in args.size.lower().split("x"))
        chosen["size"] = (width, height)
    return {k: v for k, v in chosen.items() if v is not None}


def _format(name: str, s: dict, ok: bool) -> str:
    a, t, r = s["tracking_annotated"], s["tracking_all_tracks"], s["review"]
    return (
        f"[{name}] {'PASS' if ok else 'FAIL'}: {s['clips']} clips, {s['frames']} frames, {s['objects']} objects, "
        f"{s['box_frames']} box-frames\n"
        f"  box-frame mask recall {s['mask_recall']:.4%} ({s['masked_box_frames']}/{s['box_frames']}), "
        f"longest unmasked run {s['longest_unmasked_run']} frame(s), objects unmasked 2+ frames: {s['objects_unmasked_2plus']}, "
        f"never masked: {s['objects_never_masked']}\n"
        f"  tracks on annotated objects: IDF1 {a['IDF1']:.3f}, HOTA {a['HOTA']:.3f} (DetA {a['DetA']:.3f}, AssA {a['AssA']:.3f})\n"
        f"  all tracks:                  IDF1 {t['IDF1']:.3f}, HOTA {t['HOTA']:.3f}\n"
        f"  review: {r['routed']}/{s['clips']} clip(s) routed ({r['review_rate']:.1%}); leaking clips {r['leaking']}, "
        f"{r['captured']} of them routed"
    )


def _frames(text: str) -> tuple[int, int]:
    """``FIRST,LAST``: two frame numbers, the first before the last."""
    first, last = (int(part) for part in text.split(","))
    if not 0 <= first < last:
        raise argparse.ArgumentTypeError(f"expected FIRST,LAST with 0 <= FIRST < LAST, got {text!r}")
    return first, last
