"""The deep pass's schedule (once per interval of media time, and after a scene cut), its misses, and when the
light plan was blind over a whole interval."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.params import DetectorParams, VideoParams
from pipeline.records import Detections, ObjectClass
from pipeline.track.bytetrack import TrackObservation
from pipeline.track.motion import roll_degrees
from pipeline.video.keyframes import KeyframeClock, LightBlindness, TiltedViews, light_misses, tracks_of


def grey(level: int) -> np.ndarray:
    return np.full((72, 128), level, np.uint8)


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (72, 128), dtype=np.uint8)


def test_keyframes_come_once_per_interval_of_media_time_whatever_the_frame_rate():
    for fps in (25, 30, 60):
        clock = KeyframeClock(1.0, on_cuts=False)
        due = [i for i in range(3 * fps) if clock.due(i / fps, None)]  # no cuts watched: no picture needed
        assert due == [0, fps, 2 * fps]
        assert clock.stats.keyframes == 3 and clock.stats.scene_cuts == 0


def test_a_scene_cut_brings_the_deep_pass_forward_and_a_pan_does_not():
    clock = KeyframeClock(10.0)
    frames = [noise(1)] * 10 + [grey(20)] * 5  # a textured scene, then a cut to a dark one
    due = {i: clock.cut for i, frame in enumerate(frames) if clock.due(i / 30, frame)}
    assert due == {0: False, 10: True}  # the first keyframe by its time, the second by the cut
    assert clock.stats.scene_cuts == 1
    panning = KeyframeClock(10.0)
    scene = noise(2)
    due = [i for i in range(10) if panning.due(i / 30, np.roll(scene, 4 * i, axis=1))]
    assert due == [0]  # the same picture moving: its histogram stays


def tilted_keyframes(views: TiltedViews, adds: dict[int, int], cuts: set[int], keyframes: int = 12,
                     leaning: dict[int, tuple[int, ...]] | None = None) -> list[int]:
    """The keyframes the tilted views run on, with ``adds`` faces added on the keyframes so numbered, and the
    views that saw faces among them the light plan's views had not found surely (``leaning``; none if not given)."""
    due = []
    for keyframe in range(keyframes):
        if views.due(keyframe in cuts):
            due.append(keyframe)
            views.ran(adds.get(keyframe, 0), (leaning or {}).get(keyframe, ()))
        else:
            views.ran(0, ())
    return due


def test_tilted_views_run_on_every_nth_keyframe_of_an_upright_shot():
    assert tilted_keyframes(TiltedViews(5), {}, set()) == [0, 5, 10]
    assert tilted_keyframes(TiltedViews(1), {}, set()) == list(range(12))
    assert tilted_keyframes(TiltedViews(0), {0: 3}, {4}) == []  # off


def test_tilted_views_keep_running_while_they_add_faces_and_start_again_on_a_new_scene():
    views = TiltedViews(5)
    # they find leaning faces on keyframes 0-2, nothing on 3; a cut at 7; nothing after
    assert tilted_keyframes(views, {0: 2, 1: 1, 2: 4}, {7}) == [0, 1, 2, 3, 7]
    assert views.keyframes == 5 and views.added == 7
    assert views.leaning_intervals == 0  # the light plan's views found every one of them too (less surely)


def test_a_shot_leans_over_the_intervals_with_faces_only_the_tilted_views_see_at_both_ends():
    views = TiltedViews(5)
    assert tilted_keyframes(views, {0: 2, 1: 1, 2: 4, 3: 1}, set(), leaning={0: (45,), 1: (-45,), 3: (45,)}) == [0, 1, 2, 3, 4, 9]
    assert views.leaning_intervals == 1  # keyframes 0-1; keyframe 2 added only faces the light plan saw too


def test_a_shot_leans_from_a_keyframe_where_the_tilted_views_saw_a_face_the_light_plan_missed_to_the_next():
    views = TiltedViews(5)
    plans = VideoParams().frame_plans()
    leaning = []
    # keyframe 0: a face only the view tilted 45 degrees clockwise sees; 1: faces only each view sees; 2: one
    # the light plan's views found too, less surely; 3: none
    for added, sides in [(2, (-45,)), (2, (45, -45)), (1, ()), (0, ())]:
        views.ran(*((added, sides) if views.due(False) else (0, ())))
        light = views.light_plans(plans)  # a light pass between this keyframe and the next
        face = light[ObjectClass.FACE]
        leaning.append(face.tilt_sides if face.tilt_45 else ())
        assert light[ObjectClass.LICENSE_PLATE] == plans[ObjectClass.LICENSE_PLATE]
        assert face.max_side == plans[ObjectClass.FACE].max_side  # at the light plan's own scale
    assert leaning == [(-45,), (45, -45), (), ()] and views.frames == 2
    assert views.frame_views == {"-45": 2, "+45": 1}  # for the sidecar
    assert not plans[ObjectClass.FACE].tilt_45  # the plans handed in are left as they were


def turning(degrees: float) -> np.ndarray:
    """The camera's motion into a frame (``CameraMotion``): the picture turned ``degrees``, nothing else."""
    return cv2.getRotationMatrix2D((640.0, 360.0), degrees, 1.0)


def test_roll_degrees_reads_the_turn_of_a_camera_motion():
    assert abs(roll_degrees(turning(30.0))) == pytest.approx(30.0)
    assert roll_degrees(turning(30.0)) == pytest.approx(-roll_degrees(turning(-30.0)))
    assert roll_degrees(np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -3.0]])) == 0.0  # a pan turns nothing


def test_a_camera_that_rolls_far_brings_the_tilted_views_to_the_next_keyframe():
    views = TiltedViews(5)
    assert views.due(False)  # keyframe 0: a scene's first
    views.ran(0, ())
    due = []
    for keyframe in range(1, 8):
        for _ in range(30):  # the frames up to this keyframe: swaying 15 degrees and back, then rolling 30
            views.rolled(turning(1.0 if keyframe == 3 else (-0.5 if keyframe % 2 else 0.5)))
        views.rolled(None)  # camera motion not followed on a frame: no roll
        due.append(views.due(False))
        views.ran(0, ())
    assert due == [False, False, True, False, False, False, False]  # keyframe 3 after the roll, then every 5th
    assert views.keyframes == 2


def test_flashes_trigger_at_most_one_deep_pass_per_fifth_of_a_second():
    clock = KeyframeClock(0.0)
    frames = [grey(20), grey(230)] * 6  # a strobe at 30 fps
    due = [i for i, frame in enumerate(frames) if clock.due(i / 30, frame)]
    assert len(due) <= 3 and due[0] == 1


def test_a_clock_watching_for_cuts_refuses_a_frame_without_its_picture():
    with pytest.raises(ValueError, match="in grey"):
        KeyframeClock(1.0).due(0.0, None)


def test_off_means_off():
    clock = KeyframeClock(0.0, on_cuts=False)
    assert not any(clock.due(i / 30, noise(i)) for i in range(10))


def test_horizons_stretch_to_cover_one_keyframe_interval():
    video = VideoParams().covering(60)
    assert (video.backfill_frames, video.lost_mask_frames, video.lookahead_frames, video.tracker.lost_frames) == (60,) * 4
    assert VideoParams().covering(10) == VideoParams()  # never shortened


def test_light_misses_count_confident_deep_finds_no_light_detection_overlaps():
    face, plate = ObjectClass.FACE, ObjectClass.LICENSE_PLATE
    deep = Detections.concat([
        Detections.of(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], np.float32),
                      np.array([0.9, 0.8, 0.25], np.float32), face),  # the last is in the review band
        Detections.of(np.array([[20, 0, 40, 8]], np.float32), np.array([0.9], np.float32), plate),
    ])
    light = Detections.of(np.array([[1, 1, 11, 11]], np.float32), np.array([0.3], np.float32), face)
    found, missed = light_misses(deep, light, DetectorParams())
    assert found == 3 and missed.boxes.tolist() == [[50, 50, 60, 60], [20, 0, 40, 8]]  # the second face and the plate
    found, missed = light_misses(deep, deep, DetectorParams())
    assert found == 3 and not len(missed)


def observation(track_id: int, object_class: ObjectClass, box: tuple[float, float, float, float]) -> TrackObservation:
    return TrackObservation(track_id, int(object_class), box, 0.9, True, 0)


def test_a_find_belongs_to_the_track_of_its_class_it_overlaps_most():
    face, plate = ObjectClass.FACE, ObjectClass.LICENSE_PLATE
    tracks = [observation(1, face, (0, 0, 10, 10)), observation(2, face, (2, 0, 12, 10)), observation(3, plate, (50, 50, 60, 60))]
    found = Detections.concat([
        Detections.of(np.array([[3, 0, 13, 10], [50, 50, 60, 60], [80, 80, 90, 90]], np.float32), np.full(3, 0.9, np.float32), face),
        Detections.of(np.array([[51, 50, 61, 60]], np.float32), np.array([0.9], np.float32), plate),
    ])
    # the plate track's box does not claim the face on it; a face far from every track has none
    assert tracks_of(found, tracks) == [(1, 2), (1, None), (1, None), (2, 3)]
    assert tracks_of(found, []) == [(1, None), (1, None), (1, None), (2, None)]


def test_the_light_plan_is_blind_over_an_interval_when_both_ends_hold_a_find_it_never_saw():
    face, plate = int(ObjectClass.FACE), int(ObjectClass.LICENSE_PLATE)
    blindness = LightBlindness()
    blindness.keyframe(0, [(face, 1), (plate, 2)])
    blindness.seen([5])
    blindness.keyframe(30, [(face, 1)])  # the same face, missed again and never seen between: blind
    blindness.keyframe(60, [(face, 7), (plate, 8)])  # another face, one the tracker did not follow: blind too
    blindness.keyframe(90, [])
    assert blindness.blind_intervals() == {"face": 2}  # the plates are a keyframe apart, not in a row

    seen = LightBlindness()
    seen.keyframe(0, [(face, 1)])
    seen.keyframe(30, [(face, 1), (face, None)])
    seen.seen([1])  # the light plan found track 1 on some frame: only the untracked find is left at 30
    assert seen.blind_intervals() == {}
    one_off = LightBlindness()
    one_off.keyframe(0, [(face, 1)])
    one_off.keyframe(30, [])
    one_off.keyframe(60, [(face, 2)])
    assert one_off.blind_intervals() == {}
