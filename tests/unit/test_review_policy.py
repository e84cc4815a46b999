"""The review policy: which findings send a file to review/ and which are only noted in its sidecar.
"leak-risk" (the default) routes only what a person could change, something that may still be unmasked;
"strict" routes every review-band detection too; "off" routes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detect.focus import Blur
from pipeline.params import MaskParams, Params, ReviewParams, VideoParams
from pipeline.qc import VideoSummary
from pipeline.records import Detections, ObjectClass
from pipeline.report import record_detections, record_video, start_report


class NoModels:
    model_records: list = []


# One confident face (0.9) and one in the face review band [0.2, 0.4) (0.3).
FACES = Detections.of(np.array([[10, 10, 50, 50], [100, 10, 140, 50]], np.float32), np.array([0.9, 0.3], np.float32),
                      ObjectClass.FACE)


SHARP = Blur(0.2, 0.2)


def photo_report(params: Params, unmasked_plate_finds: np.ndarray | None = None, blur: Blur = SHARP):
    report = start_report("photo.jpg", params, NoModels())  # type: ignore[arg-type]
    record_detections(report, FACES, params, unmasked_plate_finds, blur)
    return report


def video_report(params: Params, **changes):
    summary = VideoSummary(
        container="mp4", codec_in="h264", codec_out="libx264", width=640, height=360, rotation=0, frames_declared=30,
        frames_decoded=30, frames_written=30, frames_detected=10, detect_stride=3, duration_in_s=1.0, audio_streams=[],
        dropped_streams=[], tracks=[], untracked_detections=0, detection_gaps=0, detection_gap_frames=[],
        review_band_frames={"face": 4}, decode_warnings=[], decode_warning_count=0, corrupt_frames=[],
    ).model_copy(update=changes)
    report = start_report("clip.mp4", params, NoModels())  # type: ignore[arg-type]
    record_video(report, summary, params)
    return report


def with_policy(policy: str, **mask) -> Params:
    return Params(review=ReviewParams(policy=policy), mask=MaskParams(**mask))  # type: ignore[arg-type]


def test_by_default_a_masked_review_band_detection_is_noted_not_routed():
    report = photo_report(Params())
    assert Params().review.policy == "leak-risk"
    assert report.disposition == "done" and report.review_reasons == []
    assert report.review_notes == ["1 face detection(s) in the review band [0.20, 0.40), masked"]
    assert report.counts["face"] == 2  # masked all the same


def test_strict_routes_every_review_band_detection():
    report = photo_report(with_policy("strict"))
    assert report.disposition == "review" and report.review_notes == []
    assert report.review_reasons == ["1 face detection(s) in the review band [0.20, 0.40), masked"]


def test_an_unmasked_review_band_detection_is_a_leak_risk():
    report = photo_report(with_policy("leak-risk", mask_review_band=False))
    assert report.disposition == "review"
    assert report.review_reasons == ["1 face detection(s) in the review band [0.20, 0.40), NOT masked"]
    assert report.counts["face"] == 1


def test_off_routes_nothing_and_still_notes_it():
    report = photo_report(with_policy("off", mask_review_band=False))
    assert report.disposition == "done" and report.review_reasons == []
    assert len(report.review_notes) == 1


@pytest.mark.parametrize(("policy", "routed"), [("leak-risk", 1), ("strict", 2), ("off", 0)])
def test_a_plate_like_region_the_cross_check_found_unmasked_is_a_leak_risk(policy, routed):
    report = photo_report(with_policy(policy), np.array([[5.04, 60, 60, 80.26]], np.float32))
    reason = ("a second plate detector (OpenCV's Haar cascade) found 1 plate-like region(s) that no mask touches: "
              "a plate may be unmasked")
    assert len(report.review_reasons) == routed and report.disposition == ("review" if routed else "done")
    assert reason in report.review_reasons + report.review_notes
    assert report.plate_cross_check == [(5.0, 60.0, 60.0, 80.3)]  # where, for the reviewer (output pixels)


def test_no_cross_check_find_leaves_the_sidecar_list_empty():
    assert photo_report(Params(), np.zeros((0, 4), np.float32)).plate_cross_check == []
    assert photo_report(Params()).plate_cross_check == []


@pytest.mark.parametrize(("policy", "routed"), [("leak-risk", 1), ("strict", 2), ("off", 0)])
def test_a_video_with_damaged_frames_is_a_leak_risk_and_its_masked_band_is_noted(policy, routed):
    report = video_report(with_policy(policy), decode_warning_count=2, decode_warnings=["x", "y"])
    assert len(report.review_reasons) == routed and len(report.review_reasons) + len(report.review_notes) == 2
    assert report.disposition == ("review" if routed else "done")
    if policy == "leak-risk":
        assert report.review_reasons[0].startswith("2 decode warning(s)")


def test_a_clean_video_with_a_masked_review_band_is_done_by_default():
    report = video_report(Params())
    assert report.disposition == "done" and report.review_notes == [
        "face detection(s) in the review band [0.20, 0.40) on 4 frame(s), masked"]


def test_the_light_plan_blind_over_a_keyframe_interval_is_a_leak_risk():
    report = video_report(Params(), keyframes=3, keyframe_objects=4, light_plan_missed=2, light_blind_intervals={"face": 1})
    assert report.disposition == "review"
    assert report.review_reasons == ["the light frame plan saw no face over 1 keyframe interval(s) where the deep pass found "
                                     "one at both ends: tracks masked the frames between, but a brief leak there is possible"]
    off = Params(video=VideoParams(light_blind_review=False))
    report = video_report(off, keyframes=3, keyframe_objects=4, light_plan_missed=2, light_blind_intervals={"face": 1})
    assert report.disposition == "done" and "saw no face over 1 keyframe interval(s)" in report.review_notes[-1]


def test_a_leaning_shot_is_a_leak_risk_and_a_one_off_tilted_find_is_not():
    report = video_report(Params(), keyframes=3, tilted_keyframes=3, tilted_faces=9, tilted_intervals=2)
    assert report.disposition == "review"
    assert report.review_reasons == ["the 45-degree face views saw faces the light frame plan did not at both ends of 2 "
                                     "keyframe interval(s): the shot leans, and leaning faces are found less surely"]
    one_off = video_report(Params(), keyframes=3, tilted_keyframes=2, tilted_faces=1, tilted_frames=29)
    assert one_off.disposition == "done" and one_off.review_reasons == []
    off = video_report(Params(video=VideoParams(tilted_review=False)), keyframes=3, tilted_faces=9, tilted_intervals=2)
    assert off.disposition == "done" and "both ends of 2 keyframe interval(s)" in off.review_notes[-1]


def test_light_plan_misses_that_lasted_no_interval_are_noted_not_routed():
    report = video_report(Params(), keyframes=3, keyframe_objects=4, light_plan_missed=2)
    assert report.disposition == "done" and report.review_reasons == []
    assert "light frame plan missed 2 of 4 object(s)" in report.review_notes[-1]
    strict = video_report(with_policy("strict"), keyframes=3, keyframe_objects=4, light_plan_missed=2)
    assert strict.disposition == "review"


def test_the_old_miss_share_setting_is_refused_with_its_replacement_named():
    with pytest.raises(ValueError, match="light_blind_review"):
        VideoParams(light_miss_review=0.25)  # type: ignore[call-arg]


OUT_OF_FOCUS = ("out of focus (blur effect 0.62, at least 0.45): plates are missed more often on a blurred picture, "
                "even sharpened: a plate may be unmasked")


SHAKEN = ("out of focus (shaken: 0.19 blurrier down the columns than along the rows, at least 0.15): plates are "
          "missed more often on a blurred picture, even sharpened: a plate may be unmasked")


def test_an_out_of_focus_or_shaken_photo_is_a_leak_risk_at_the_shipped_defaults():
    assert photo_report(Params(), blur=Blur(0.62, 0.5)).review_reasons == [OUT_OF_FOCUS]
    assert photo_report(Params(), blur=Blur(0.21, 0.40)).review_reasons == [SHAKEN]
    assert photo_report(Params(), blur=Blur(0.44, 0.30)).disposition == "done"


@pytest.mark.parametrize("changes", [{"review": {"out_of_focus": False}}, {"review": {"policy": "off"}},
                                     {"detector": {"classes": ["face"]}}])
def test_an_out_of_focus_photo_stays_out_of_review_where_the_profile_says_or_no_plate_is_searched(changes):
    report = photo_report(Params.model_validate(changes), blur=Blur(0.62, 0.5))
    assert report.disposition == "done"
    assert OUT_OF_FOCUS not in report.review_reasons
