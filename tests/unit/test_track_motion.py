"""Camera-motion compensation: the global transform between frames, and tracks that follow it."""

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from pipeline.params import DetectorParams, TrackerParams, VideoParams
from pipeline.records import Detections, ObjectClass
from pipeline.track.bytetrack import ByteTracker, ScoreBands
from pipeline.track.motion import IDENTITY, CameraMotion, invert, small_grey, warp_boxes
from pipeline.video.plan import MaskPlanner

FACE = int(ObjectClass.FACE)


def scene(seed=0, size=(400, 600)):
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (*size, 3)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def view(image, matrix, out=(240, 320)):
    return cv2.warpAffine(image, matrix, (out[1], out[0]))


def similarity(scale, angle_deg, tx, ty):
    a = np.radians(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def compose(second, first):
    """second after first, as 2x3 matrices."""
    return (np.vstack([second, [0, 0, 1]]) @ np.vstack([first, [0, 0, 1]]))[:2]


def test_first_frame_and_featureless_frames_give_identity():
    motion = CameraMotion()
    np.testing.assert_allclose(motion.update(*small_grey(np.zeros((120, 160, 3), np.uint8))), IDENTITY)
    np.testing.assert_allclose(motion.update(*small_grey(np.zeros((120, 160, 3), np.uint8))), IDENTITY)  # nothing to track


@pytest.mark.parametrize("step", [similarity(1, 0, -7, 3), similarity(1.03, 0.8, -4, -2), similarity(0.97, -1, 5, 6)])
def test_estimates_pan_zoom_and_roll(step):
    image = scene()
    first = similarity(1.0, 0, -120, -80)
    motion = CameraMotion()
    motion.update(*small_grey(view(image, first)))
    estimate = motion.update(*small_grey(view(image, compose(step, first))))
    points = np.array([[40.0, 30.0], [280.0, 200.0], [160.0, 120.0]])
    expected = points @ step[:, :2].T + step[:, 2]
    got = points @ estimate[:, :2].T + estimate[:, 2]
    np.testing.assert_allclose(got, expected, atol=0.6)


def test_large_frames_are_analysed_small_but_answer_in_full_pixels():
    image = cv2.resize(scene(), (1800, 1200))
    first = similarity(1.0, 0, -200, -100)
    step = similarity(1.0, 0, -21, 9)
    motion = CameraMotion()
    motion.update(*small_grey(view(image, first, out=(720, 1280))))
    estimate = motion.update(*small_grey(view(image, compose(step, first), out=(720, 1280))))
    np.testing.assert_allclose(estimate[:, 2], [-21, 9], atol=1.5)


def test_corners_found_ahead_on_other_threads_give_the_same_transforms():
    """A frame's corners may be found on other threads while the look thread follows the flow into it."""
    image = cv2.resize(scene(1), (1800, 1200))
    steps = [similarity(1.0, 0, -21, 9), similarity(1.02, 0.5, 4, -3), similarity(1.0, 0, 0, 0), similarity(0.98, -1, -6, 2)]
    frames, place = [], similarity(1.0, 0, -200, -100)
    for step in [IDENTITY, *steps, *steps]:
        place = compose(step, place)
        frames.append(small_grey(view(image, place, out=(720, 1280))))
    frames.insert(5, small_grey(np.zeros((90, 160, 3), np.uint8)))  # a cut to another size and back
    callers = []

    class Ahead(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            def called(*args, **kwargs):
                callers.append(threading.current_thread())
                return fn(*args, **kwargs)

            return super().submit(called, *args, **kwargs)

    with Ahead(2) as ahead:
        alongside, in_turn = CameraMotion(ahead), CameraMotion()
        moved = 0
        for grey, scale in frames:
            transform = alongside.update(grey, scale)
            np.testing.assert_array_equal(transform, in_turn.update(grey, scale))
            moved += not np.allclose(transform, IDENTITY, atol=0.1)
    assert moved >= 5  # every step but the still one and the two across the cut
    assert len(callers) == len(frames)
    assert threading.current_thread() not in callers


@pytest.mark.parametrize("shape", [(2, 16384), (16384, 2)])
def test_a_frame_thousands_of_times_wider_than_tall_is_analysed_a_pixel_across_at_least(shape):
    motion = CameraMotion()
    frame = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    for _ in range(2):
        assert motion.update(*small_grey(frame)).shape == (2, 3)


def test_warp_boxes_and_invert_round_trip():
    matrix = similarity(1.2, 0, 10, -5)
    boxes = np.array([[0, 0, 10, 20], [5, 5, 15, 15]], float)
    np.testing.assert_allclose(warp_boxes(boxes, matrix), [[10, -5, 22, 19], [16, 1, 28, 13]])
    np.testing.assert_allclose(warp_boxes(warp_boxes(boxes, matrix), invert(matrix)), boxes, atol=1e-9)


def test_lost_track_follows_the_camera_not_its_old_velocity():
    bands = {FACE: ScoreBands(0.5, 0.2)}
    tracker = ByteTracker(TrackerParams(), bands)
    pan = similarity(1, 0, -10, 0)  # the camera turns: everything moves 10 px left per frame
    box = np.array([200.0, 100, 240, 140])
    for frame in range(6):  # a face seen while the camera pans
        camera = None if frame == 0 else pan
        box = box if frame == 0 else warp_boxes(box, pan)[0]
        tracker.step(frame, Detections(box[None], [0.9], [FACE]), camera)
    reverse = similarity(1, 0, 12, 0)  # the camera swings back; the face is missed from here on
    for frame in range(6, 10):
        box = warp_boxes(box, reverse)[0]
        (obs,) = tracker.step(frame, Detections.empty(), reverse)
        assert not obs.matched
        assert obs.box == pytest.approx(tuple(box), abs=3)


def test_backfill_runs_back_along_the_camera_motion():
    pan = similarity(1, 0, -8, 2)
    boxes = {}
    box = np.array([300.0, 100, 340, 140])
    for frame in range(20):
        box = box if frame == 0 else warp_boxes(box, pan)[0]
        boxes[frame] = box
    planner = MaskPlanner(VideoParams(backfill_frames=6, temporal_dilation=0), DetectorParams())
    plans = []
    for frame in range(20):
        detections = Detections(boxes[frame][None], [0.9], [FACE]) if frame >= 10 else Detections.empty()
        plans += planner.push(frame, detections, None if frame == 0 else pan)
    plans += planner.finish()
    for frame in range(4, 10):
        (track,) = plans[frame].tracks
        assert track.source == "backfill"
        centre = (np.array(track.box[:2]) + np.array(track.box[2:])) / 2
        truth = (boxes[frame][:2] + boxes[frame][2:]) / 2
        np.testing.assert_allclose(centre, truth, atol=2)


def _backfilled_scene(planner: MaskPlanner) -> list:
    """Faces that come into view one after another under a rolling, zooming camera, each backfilled."""
    roll = similarity(1.01, 0.7, -6, 3)
    plans = []
    for frame in range(60):
        boxes = [np.array([100.0 + 40 * k, 80, 140 + 40 * k, 120]) for k in range(5) if frame >= 12 + 8 * k]
        detections = Detections(np.array(boxes).reshape(-1, 4), [0.9] * len(boxes), [FACE] * len(boxes))
        plans += planner.push(frame, detections if frame % 2 == 0 else None, None if frame == 0 else roll)
    return plans + planner.finish()


def test_a_backfilled_box_asked_for_again_is_the_one_computed_the_first_time(monkeypatch):
    """A frame's backfilled box is asked for again as its neighbours' dilation; it is computed once, and the
    plans are exactly those of a planner that computes it every time it is asked."""
    video = VideoParams(backfill_frames=30, temporal_dilation=2)
    computed = []
    shipped = MaskPlanner._backfilled

    def counted(self, *args):
        computed.append(args[1:])
        return shipped(self, *args)

    monkeypatch.setattr(MaskPlanner, "_backfilled", counted)
    plans = _backfilled_scene(MaskPlanner(video, DetectorParams()))
    asked = len(computed)
    assert len(set(computed)) == asked  # never the same (frame, first, later) twice

    def every_time(self, history, first, frame):
        later = [f for f in history.detected[1:4] if f > first]
        return self._backfilled(history, frame, first, later[-1] if later else None)

    monkeypatch.setattr(MaskPlanner, "_backfill", every_time)
    computed.clear()
    again = _backfilled_scene(MaskPlanner(video, DetectorParams()))
    assert sum(t.source == "backfill" for plan in plans for t in plan.tracks) > 20
    assert [plan.tracks for plan in plans] == [plan.tracks for plan in again]
    assert len(computed) > 2 * asked  # what the memo saves


def test_gap_is_interpolated_along_the_camera_motion():
    # A still face under a camera that pans right and then left again: the straight line between the
    # ends of the gap would miss it, the camera-carried blend does not.
    moves = [similarity(1, 0, -15, 0)] * 8 + [similarity(1, 0, 15, 0)] * 8
    box, boxes = np.array([200.0, 100, 240, 140]), {}
    for frame in range(17):
        box = box if frame == 0 else warp_boxes(box, moves[frame - 1])[0]
        boxes[frame] = box
    planner = MaskPlanner(VideoParams(temporal_dilation=0), DetectorParams())
    plans = []
    for frame in range(17):
        seen = frame <= 2 or frame >= 14
        detections = Detections(boxes[frame][None], [0.9], [FACE]) if seen else Detections.empty()
        plans += planner.push(frame, detections, None if frame == 0 else moves[frame - 1])
    plans += planner.finish()
    for frame in range(3, 14):
        (track,) = plans[frame].tracks
        assert track.source == "interpolated"
        np.testing.assert_allclose(track.box, boxes[frame], atol=1.0)
