"""The video review router as a leak detector, on a real face that moves on its own.

The clip (pipeline/eval/movers.py): the largest labelled face of dlib_faces_voc, 110 px tall, swings left and right
over a ucsd_lp street photo at 1280x720, once a second: the keyframes (one a second) always see it at the
same place, and between them it goes out by 15% of the frame's width and comes back.

- At the shipped defaults (``Params()``, every class) the light frame plan sees the face on every detected
  frame: every box-frame is masked, by the boxes companion and by the published pixels, and nothing is
  left for a person to change, so the clip is not sent to review.
- With a light plan blind to faces (a part test of the router: the face pass shrunk to 64 pixels and no
  re-detection around tracks) only the deep pass finds the face, the tracks hold it at the keyframes'
  place, and it leaks between them. The router must send that clip to review, for the light plan's
  blindness over whole keyframe intervals.

The issue's goal for ordinary footage (none of the three shared clips goes to review at the shipped defaults) is
checked in test_shared_clips, which processes each clip once for that and the media contract.
"""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from pipeline.eval.mixed_scenes import face_pool, plate_photos
from pipeline.eval.movers import render_swinging_face
from pipeline.eval.video import GroundTruth, score_clip
from pipeline.params import Params, VideoParams
from pipeline.records import ObjectClass
from pipeline.video.process import companion_name, process_video

from tests.conftest import eval_set, require_eval

CHANGED = 10  # a pixel is changed when a channel moved by more than this (H.264 re-encoding moves a few)
MASKED_SHARE = 0.5  # the face's box counts as masked on a frame when this share of its pixels changed

pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple:
    root = require_eval()
    eval_set("dlib_faces_voc"), eval_set("ucsd_lp")
    face = max(face_pool(root, ("dlib_faces_voc",)), key=lambda f: f.box[3] - f.box[1])
    background = cv2.imread(str(plate_photos(root, ("ucsd_lp",))[0].path), cv2.IMREAD_COLOR)
    src = tmp_path_factory.mktemp("mover") / "swing.mp4"
    return src, render_swinging_face(background, face, src)


def run(clip: tuple, params: Params, engine, tmp_path):
    src, truth = clip
    dst = tmp_path / "out.mp4"
    report = process_video(src, dst, params, engine, name=src.name)
    return report, score_clip("swing", truth, dst.with_name(companion_name(dst)), params.mask, (ObjectClass.FACE,)), dst


def masked_frames(src, dst, truth: GroundTruth) -> int:
    """Frames on which most of the face's labelled box changed between input and output: the pixels, not the
    sidecar or the companion."""
    count = 0
    with av.open(str(src)) as before, av.open(str(dst)) as after:
        pairs = zip(before.decode(video=0), after.decode(video=0))
        for (original, published), frame in zip(pairs, truth.frames):
            x1, y1, x2, y2 = (round(v) for v in frame["boxes"][0])
            a = original.to_ndarray(format="rgb24")[y1:y2, x1:x2].astype(np.int16)
            b = published.to_ndarray(format="rgb24")[y1:y2, x1:x2].astype(np.int16)
            count += int((np.abs(a - b).max(axis=2) > CHANGED).mean() >= MASKED_SHARE)
    return count


def test_at_the_shipped_defaults_a_face_moving_on_its_own_is_masked_on_every_frame_and_not_sent_to_review(
    clip, engine, tmp_path,
):
    report, result, dst = run(clip, Params(), engine, tmp_path)
    src, truth = clip
    assert result.box_frames == len(truth.frames) == 90
    assert result.masked_box_frames == result.box_frames
    assert masked_frames(src, dst, truth) == 90
    assert report.disposition == "done", report.review_reasons
    assert report.video is not None and report.video["light_blind_intervals"] == {}


def test_a_light_plan_blind_to_the_face_leaks_between_keyframes_and_the_clip_goes_to_review(clip, engine, tmp_path):
    blind = VideoParams(scales={"face": {"max_side": 64, "upscale_below": 0, "tile_above": 100_000}}, roi_redetect=False)
    report, result, dst = run(clip, Params(video=blind), engine, tmp_path)
    src, truth = clip
    assert report.video is not None and report.video["keyframes"] == 3
    assert max(result.longest_unmasked_run.values()) >= 2  # the leak the router has to catch
    assert masked_frames(src, dst, truth) < 90
    assert report.disposition == "review"
    assert report.video["light_blind_intervals"] == {"face": 2}
    assert any(reason.startswith("the light frame plan saw no face over 2 keyframe interval(s)") for reason in report.review_reasons)
