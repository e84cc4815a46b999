"""The ByteTrack-style tracker: Kalman motion, one-to-one matching, two-stage association, track life."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.params import TrackerParams
from pipeline.records import Detections, ObjectClass
from pipeline.track import kalman
from pipeline.track.bytetrack import ByteTracker, ScoreBands
from pipeline.track.matching import assign, iou_matrix

FACE, PLATE = int(ObjectClass.FACE), int(ObjectClass.LICENSE_PLATE)
BANDS = {FACE: ScoreBands(high=0.5, low=0.2), PLATE: ScoreBands(high=0.5, low=0.2)}


def dets(*rows):
    """rows of (x1, y1, x2, y2, score, class)"""
    if not rows:
        return Detections.empty()
    a = np.array(rows, dtype=np.float64)
    return Detections(a[:, :4], a[:, 4], a[:, 5].astype(int))


# --- IoU and assignment -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([], [[0, 0, 1, 1]], np.zeros((0, 1))),
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], [[1.0]]),
        ([[0, 0, 10, 10]], [[10, 10, 20, 20]], [[0.0]]),  # touching corners only
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], [[50 / 150]]),
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]], [[0.0]]),  # degenerate: no area, no overlap, no division by zero
    ],
)
def test_iou_matrix_cases(a, b, expected):
    np.testing.assert_allclose(iou_matrix(np.array(a), np.array(b)), np.array(expected))


boxes = st.tuples(
    st.floats(0, 500), st.floats(0, 500), st.floats(1, 200), st.floats(1, 200)
).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@given(st.lists(boxes, min_size=1, max_size=6), st.lists(boxes, min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_iou_is_symmetric_and_bounded(a, b):
    forward, backward = iou_matrix(np.array(a), np.array(b)), iou_matrix(np.array(b), np.array(a))
    np.testing.assert_allclose(forward, backward.T)
    assert (forward >= 0).all() and (forward <= 1 + 1e-9).all()
    np.testing.assert_allclose(np.diag(iou_matrix(np.array(a), np.array(a))), 1.0)


def test_assign_picks_the_best_total_and_respects_the_floor():
    iou = np.array([[0.9, 0.6], [0.8, 0.1], [0.05, 0.0]])
    pairs, rows, cols = assign(iou, min_iou=0.2)
    assert sorted(pairs) == [(0, 1), (1, 0)]  # 0.6 + 0.8 beats 0.9 + 0.1
    assert rows == [2] and cols == []


def test_assign_empty():
    assert assign(np.zeros((0, 3)), 0.2) == ([], [], [0, 1, 2])


# --- Kalman -------------------------------------------------------------------------------------


def test_kalman_learns_constant_velocity():
    mean, cov = kalman.initiate(np.array([0, 0, 20, 20]))
    for step in range(1, 12):
        mean, cov = kalman.predict(mean, cov)
        mean, cov = kalman.update(mean, cov, np.array([5 * step, 2 * step, 5 * step + 20, 2 * step + 20]))
    predicted, _ = kalman.predict(mean, cov, steps=3)
    np.testing.assert_allclose(kalman.xywh_to_xyxy(predicted), [70, 28, 90, 48], atol=1.5)


def test_kalman_prediction_never_collapses():
    mean, cov = kalman.initiate(np.array([0, 0, 10, 10]))
    mean[6:8] = -50  # shrinking fast
    mean, _ = kalman.predict(mean, cov, steps=5)
    box = kalman.xywh_to_xyxy(mean)
    assert box[2] - box[0] >= 1 and box[3] - box[1] >= 1


# --- tracker ------------------------------------------------------------------------------------


def tracker(**overrides):
    return ByteTracker(TrackerParams(**overrides), BANDS)


def test_no_detections_no_tracks():
    t = tracker()
    assert t.step(0, Detections.empty()) == []
    assert t.step(1, None) == []


def test_moving_face_keeps_one_id_and_reports_the_detection_box():
    t = tracker()
    ids = set()
    for frame in range(20):
        box = (10 + 8 * frame, 50, 50 + 8 * frame, 90)
        (obs,) = t.step(frame, dets((*box, 0.9, FACE)))
        assert obs.matched and obs.box == pytest.approx(box)
        ids.add(obs.track_id)
    assert len(ids) == 1


def test_low_score_detection_extends_a_live_track_but_never_starts_one():
    t = tracker()
    (first,) = t.step(0, dets((100, 100, 140, 140, 0.9, FACE)))
    (second,) = t.step(1, dets((102, 100, 142, 140, 0.3, FACE)))  # low band: second stage
    assert second.matched and second.track_id == first.track_id and second.score == pytest.approx(0.3)
    t2 = tracker()
    assert t2.step(0, dets((100, 100, 140, 140, 0.3, FACE))) == []  # alone, a low score starts nothing


def test_lost_track_is_predicted_then_found_again_with_its_id():
    t = tracker(lost_frames=10)
    for frame in range(5):
        (obs,) = t.step(frame, dets((10 * frame, 0, 10 * frame + 40, 40, 0.9, FACE)))
    track_id = obs.track_id
    for frame in range(5, 8):  # occluded
        (obs,) = t.step(frame, Detections.empty())
        assert not obs.matched and obs.track_id == track_id
        assert obs.box[0] == pytest.approx(10 * frame, abs=6)  # the prediction keeps moving
    (obs,) = t.step(8, dets((80, 0, 120, 40, 0.9, FACE)))
    assert obs.matched and obs.track_id == track_id


def test_lost_track_is_dropped_after_lost_frames():
    t = tracker(lost_frames=3)
    t.step(0, dets((0, 0, 40, 40, 0.9, FACE)))
    assert len(t.step(3, Detections.empty())) == 1
    assert t.step(4, Detections.empty()) == []


def test_classes_never_share_a_track():
    t = tracker()
    out = t.step(0, dets((0, 0, 40, 40, 0.9, FACE), (0, 0, 40, 40, 0.9, PLATE)))
    assert len({o.track_id for o in out}) == 2
    out = t.step(1, dets((0, 0, 40, 40, 0.9, PLATE)))
    plate = [o for o in out if o.object_class == PLATE]
    face = [o for o in out if o.object_class == FACE]
    assert plate[0].matched and not face[0].matched


def test_skipped_frames_predict_without_counting_as_lost():
    t = tracker(lost_frames=30)
    for frame in (0, 3, 6):
        (obs,) = t.step(frame, dets((15 * frame, 0, 15 * frame + 40, 40, 0.9, FACE)))
    for frame in (7, 8):
        (obs,) = t.step(frame, None)
        assert not obs.matched and obs.box[0] == pytest.approx(15 * frame, abs=8)
    (obs,) = t.step(9, dets((135, 0, 175, 40, 0.9, FACE)))
    assert obs.matched


def test_ids_are_per_tracker_instance():
    a, b = tracker(), tracker()
    (oa,) = a.step(0, dets((0, 0, 10, 10, 0.9, FACE)))
    (ob,) = b.step(0, dets((0, 0, 10, 10, 0.9, FACE)))
    assert oa.track_id == ob.track_id == 1


def test_centre_gate_follows_a_whip_but_not_a_different_sized_object():
    from pipeline.track.matching import centre_similarity

    track = np.array([[0, 0, 40, 40]])
    near = centre_similarity(track, np.array([[30, 0, 70, 40], [100, 0, 140, 40], [35, 5, 50, 20]]), np.array([1.0]))
    assert near[0, 0] > 0  # 30 px away, within one box size
    assert near[0, 1] == 0  # 100 px: out of the gate
    assert near[0, 2] == 0  # close but a third of the size: another object


def test_the_centre_gate_chases_live_tracks_only():
    # 100 px away: 2.5 box sizes, inside the gate of a track matched 3 frames ago (1.5 x sqrt(3) = 2.6).
    live = tracker()
    (first,) = live.step(0, dets((100, 100, 140, 140, 0.9, FACE)))
    (moved,) = live.step(3, dets((200, 100, 240, 140, 0.9, FACE)))
    assert moved.track_id == first.track_id and moved.matched
    # Searched and not found on frame 3, the track is lost: a face as far away on frame 6 is another one.
    lost = tracker()
    (first,) = lost.step(0, dets((100, 100, 140, 140, 0.9, FACE)))
    lost.step(3, Detections.empty())
    observations = lost.step(6, dets((200, 100, 240, 140, 0.9, FACE)))
    (found,) = [o for o in observations if o.matched]
    assert found.track_id != first.track_id


def test_whip_pan_keeps_the_id():
    t = tracker()
    ids = set()
    for frame in range(10):
        x = 50 * frame  # 1.25 box widths a frame: no IoU with the previous box
        (obs,) = t.step(frame, dets((x, 0, x + 40, 40, 0.9, FACE)))
        ids.add(obs.track_id)
    assert len(ids) == 1


def test_overlapped_says_which_boxes_some_other_box_overlaps():
    from pipeline.track.matching import overlapped

    a = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], dtype=float)
    assert overlapped(a, np.array([[1, 1, 11, 11]], dtype=float), 0.3).tolist() == [True, False]
    assert overlapped(a, np.zeros((0, 4)), 0.3).tolist() == [False, False]
    assert overlapped(np.zeros((0, 4)), a, 0.3).shape == (0,)


def test_a_track_settles_on_its_second_confident_find_away_from_the_edge_and_unsettles_when_in_doubt():
    t = ByteTracker(TrackerParams(), BANDS, frame_size=(640, 360))
    (born,) = t.step(0, dets((100, 100, 140, 140, 0.9, FACE)))
    assert not born.settled  # found once: it may be spurious, or its motion unknown
    assert not t.step(1, None)[0].settled
    (second,) = t.step(3, dets((102, 100, 142, 140, 0.9, FACE)))
    assert second.settled
    assert t.step(4, None)[0].settled  # a skipped frame changes nothing
    (weak,) = t.step(6, dets((104, 100, 144, 140, 0.3, FACE)))  # kept by a review-band find
    assert weak.matched and not weak.settled
    (again,) = t.step(9, dets((106, 100, 146, 140, 0.9, FACE)))
    assert again.settled
    (missed,) = t.step(12, Detections.empty())  # searched, not found: lost
    assert not missed.settled
    (back,) = t.step(15, dets((110, 100, 150, 140, 0.9, FACE)))
    assert back.settled
    at_edge = ByteTracker(TrackerParams(), BANDS, frame_size=(640, 360))
    for frame in (0, 3, 6):  # at the frame's edge, entering or leaving: never settled
        (edge,) = at_edge.step(frame, dets((0, 100, 40, 140, 0.9, FACE)))
        assert edge.matched and not edge.settled


def test_a_track_moving_fast_on_its_own_is_never_settled():
    t = ByteTracker(TrackerParams(), BANDS, frame_size=(640, 360))
    for frame in range(0, 30, 3):  # 4 px a frame on a 40 px face: a tenth of its size
        (obs,) = t.step(frame, dets((100 + 4 * frame, 100, 140 + 4 * frame, 140, 0.9, FACE)))
    assert obs.matched and not obs.settled
    slow = ByteTracker(TrackerParams(settled_speed=0.2), BANDS, frame_size=(640, 360))
    for frame in range(0, 30, 3):
        (obs,) = slow.step(frame, dets((100 + 4 * frame, 100, 140 + 4 * frame, 140, 0.9, FACE)))
    assert obs.settled
