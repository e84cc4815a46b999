"""The per-frame mask plan: raw detections plus track boxes, using the look-ahead buffer."""

import numpy as np
import pytest

from pipeline.params import DetectorParams, VideoParams
from pipeline.records import Detections, ObjectClass
from pipeline.video.plan import MaskPlanner

FACE = int(ObjectClass.FACE)


def det(box, score=0.9, cls=FACE):
    return Detections(np.array([box], dtype=float), np.array([score]), np.array([cls]))


def run(frames, **video):
    """Push ``frames`` (a list of Detections or None) and return every emitted plan, in order."""
    planner = MaskPlanner(VideoParams(**video), DetectorParams())
    plans = []
    for index, detections in enumerate(frames):
        plans += planner.push(index, detections)
    plans += planner.finish()
    assert [p.index for p in plans] == list(range(len(frames)))
    return plans, planner


def covers(plan, point):
    """Does any planned box (raw detection or track hull) on this frame contain ``point``?"""
    x, y = point
    boxes = [tuple(b) for b in plan.detections.boxes] + [t.hull for t in plan.tracks]
    return any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)


def test_empty_video_and_no_detections():
    plans, _ = run([])
    assert plans == []
    plans, _ = run([Detections.empty()] * 5)
    assert all(not p.tracks and not len(p.detections) for p in plans)


def test_frames_leave_only_after_the_lookahead():
    planner = MaskPlanner(VideoParams(lookahead_frames=3, backfill_frames=3, detect_stride=1), DetectorParams())
    assert [planner.push(i, Detections.empty()) for i in range(3)] == [[], [], []]
    (plan,) = planner.push(3, Detections.empty())
    assert plan.index == 0 and planner.buffered == 3


def test_out_of_order_frames_are_refused():
    planner = MaskPlanner(VideoParams(), DetectorParams())
    planner.push(0, None)
    with pytest.raises(ValueError):
        planner.push(2, None)


def test_every_raw_detection_is_kept_even_when_no_track_takes_it():
    low = det((10, 10, 30, 30), score=0.25)  # review band: starts no track
    plans, _ = run([low, Detections.empty()])
    assert len(plans[0].detections) == 1 and plans[0].tracks == ()


def test_gap_inside_a_track_is_interpolated():
    frames = [det((10 * i, 0, 10 * i + 40, 40)) for i in range(10)]
    for i in (4, 5, 6):
        frames[i] = Detections.empty()  # missed for three frames
    plans, _ = run(frames, temporal_dilation=0)
    for i in (4, 5, 6):
        (track,) = plans[i].tracks
        assert track.source == "interpolated"
        assert track.box == pytest.approx((10 * i, 0, 10 * i + 40, 40))
    # Frames 4 and 6 each have an empty neighbour, 5 has two: none sits between two frames with detections.
    assert [p.detection_gap for p in plans] == [False] * 10


def test_single_missed_frame_is_flagged_as_a_detection_gap():
    frames = [det((0, 0, 40, 40))] * 3
    frames = [frames[0], Detections.empty(), frames[2]]
    plans, _ = run(frames)
    assert [p.detection_gap for p in plans] == [False, True, False]
    assert plans[1].tracks and plans[1].tracks[0].source == "interpolated"


def test_track_first_seen_late_is_backfilled_before_its_first_detection():
    # An object moving right is visible from frame 0 but only detected from frame 8.
    frames = [Detections.empty()] * 8 + [det((5 * i, 100, 5 * i + 40, 140)) for i in range(8, 16)]
    plans, _ = run(frames, backfill_frames=5, temporal_dilation=0)
    for i in range(3, 8):
        (track,) = plans[i].tracks
        assert track.source == "backfill"
        assert covers(plans[i], (5 * i + 20, 120))  # the object's true centre on that frame
    assert all(not p.tracks for p in plans[:3])  # beyond backfill_frames: nothing


def test_a_face_found_near_a_lost_track_gets_its_own_track_and_back_fill():
    # A face sits unseen from frame 0 while another, found once on frame 0, is not found again. When the
    # first is found (frame 9), 3 box sizes from the lost one, it starts its own track, back-filled to frame 0:
    # taken into the lost track instead, that track's mask would slide across between the two.
    frames = [det((100, 100, 140, 140))] + [Detections.empty()] * 8 + [det((220, 100, 260, 140))] * 6
    plans, _ = run(frames, detect_stride=1, temporal_dilation=0)
    assert all(covers(plans[i], (240, 120)) for i in range(15))
    assert len({t.track_id for p in plans for t in p.tracks}) == 2


def test_lost_track_is_masked_on_its_prediction_for_lost_mask_frames():
    frames = [det((10 * i, 0, 10 * i + 40, 40)) for i in range(10)] + [Detections.empty()] * 10
    plans, _ = run(frames, lost_mask_frames=4, temporal_dilation=0)
    sources = [p.tracks[0].source if p.tracks else None for p in plans[10:]]
    assert sources[:4] == ["predicted"] * 4 and sources[4:] == [None] * 6


def test_dilation_runs_the_mask_ahead_of_fast_motion():
    frames = [det((30 * i, 0, 30 * i + 40, 40)) for i in range(6)]
    plans, _ = run(frames, temporal_dilation=1)
    hull = plans[2].tracks[0].hull
    assert hull == pytest.approx((30, 0, 130, 40))  # frames 1..3 joined


def test_detection_stride_fills_the_skipped_frames():
    truth = [(12 * i, 50, 12 * i + 40, 90) for i in range(13)]
    frames = [det(b) if i % 3 == 0 else None for i, b in enumerate(truth)]
    plans, _ = run(frames, detect_stride=3, plate_every=1, temporal_dilation=0)
    for i, plan in enumerate(plans):
        assert plan.detected == (i % 3 == 0)
        (track,) = plan.tracks
        assert track.box == pytest.approx(truth[i], abs=1e-6)  # linear motion: interpolation is exact


def test_track_statistics():
    frames = [det((10 * i, 0, 10 * i + 40, 40), score=0.5 + 0.04 * i) for i in range(8)]
    frames[3] = Detections.empty()
    _, planner = run(frames)
    (stats,) = planner.stats.values()
    assert (stats.first_frame, stats.last_frame, stats.detected_frames) == (0, 7, 7)
    assert stats.min_score == pytest.approx(0.5) and stats.max_score == pytest.approx(0.78)
    assert stats.filled["interpolated"] == 1


def test_memory_stays_bounded_on_a_long_video():
    planner = MaskPlanner(VideoParams(lookahead_frames=10, backfill_frames=5), DetectorParams())
    for index in range(3000):
        x = (index * 7) % 600
        detections = det((x, 0, x + 40, 40)) if index % 50 < 40 else Detections.empty()
        planner.push(index, detections, np.array([[1.0, 0, 0.5], [0, 1.0, 0]]))
    assert planner.buffered == 10
    assert len(planner._camera) <= 80  # camera transforms: look-ahead plus the lost-track window
    assert len(planner._history) < 10  # old tracks forgotten
    assert all(len(h.detected) <= 60 for h in planner._history.values())
    assert len(planner._detect_counts) <= 12


def test_lookahead_must_cover_backfill():
    with pytest.raises(ValueError):
        VideoParams(lookahead_frames=5, backfill_frames=10)


def test_frame_regions_union_raw_detections_and_track_hulls():
    from pipeline.params import Params
    from pipeline.video.plan import FramePlan, TrackBox
    from pipeline.video.regions import frame_regions

    params = Params(video=VideoParams(track_margin=0.1))
    raw = Detections(np.array([[10, 10, 30, 30], [50, 50, 60, 60]], float), np.array([0.9, 0.25]), np.array([FACE, FACE]))
    tracks = (
        TrackBox(7, FACE, (100, 100, 120, 120), (100, 100, 140, 120), 0.8, "interpolated"),
        TrackBox(8, FACE, (-80, 0, -40, 40), (-80, 0, -40, 40), 0.8, "backfill"),  # wholly off the left edge
    )
    plan = FramePlan(0, True, raw, tracks, False)
    regions = frame_regions(plan, params, (240, 320, 3))
    raw_regions = [r for r, tid in regions if tid is None]
    track_regions = [(r, tid) for r, tid in regions if tid is not None]
    assert len(raw_regions) == 2  # the review-band detection is masked too (mask_review_band on)
    ((region, track_id),) = track_regions
    assert track_id == 7 and region.source == "interpolated"
    from pipeline.mask import region_box

    hull, face = (100, 100, 140, 120), ObjectClass.FACE
    assert region.box == pytest.approx(region_box(hull, face, params.mask, (240, 320), 0.1))  # the whole hull
    plain = region_box(hull, face, params.mask, (240, 320))
    assert region.box[0] < plain[0] and region.box[1] < plain[1] and region.box[2] > plain[2] and region.box[3] > plain[3]


def test_a_box_cut_by_the_frame_edge_gets_the_edge_margin_on_top_of_the_others():
    from pipeline.mask import region_box
    from pipeline.params import Params
    from pipeline.video.plan import FramePlan, TrackBox
    from pipeline.video.regions import frame_regions

    params = Params(video=VideoParams(track_margin=0.1, edge_margin=0.15))
    shape, face = (240, 320, 3), ObjectClass.FACE
    inside, at_top = (100, 100, 140, 140), (200, 0, 240, 30)
    raw = Detections(np.array([inside, at_top], float), np.array([0.9, 0.9]), np.array([FACE, FACE]))
    tracks = (TrackBox(1, FACE, inside, inside, 0.8, "track"),
              TrackBox(2, FACE, (260, 120, 330, 180), (260, 120, 330, 180), 0.8, "predicted"))  # past the right edge
    regions = frame_regions(FramePlan(0, True, raw, tracks, False), params, shape)
    boxes = {(tid, i): r.box for i, (r, tid) in enumerate(regions)}
    assert boxes[(None, 0)] == pytest.approx(region_box(inside, face, params.mask, shape))
    assert boxes[(None, 1)] == pytest.approx(region_box(at_top, face, params.mask, shape, 0.15))
    assert boxes[(1, 2)] == pytest.approx(region_box(inside, face, params.mask, shape, 0.1))
    assert boxes[(2, 3)] == pytest.approx(region_box((260, 120, 330, 180), face, params.mask, shape, 0.25))
    assert boxes[(None, 1)][0] < region_box(at_top, face, params.mask, shape)[0]  # wider than without the edge margin
    no_edge = frame_regions(FramePlan(0, True, raw, tracks, False), Params(video=VideoParams(edge_margin=0.0)), shape)
    assert no_edge[1][0].box == pytest.approx(region_box(at_top, face, params.mask, shape))


def test_re_detections_on_a_skipped_frame_are_masked_but_never_tracked():
    planner = MaskPlanner(VideoParams(detect_stride=2, plate_every=1, lookahead_frames=2, backfill_frames=2, temporal_dilation=0), DetectorParams())
    plans = planner.push(0, det((10, 10, 50, 50)))
    plans += planner.push(1, None)
    assert [o.track_id for o in planner.current] == [1]  # the track, predicted onto the skipped frame
    planner.add_roi(1, det((14, 10, 54, 50)))
    plans += planner.push(2, det((18, 10, 58, 50))) + planner.finish()
    skipped = plans[1]
    assert not skipped.detected and len(skipped.detections) == 1  # masked as a raw detection
    assert covers(skipped, (52, 30))  # the re-detection reaches past the interpolated track box
    assert planner.stats[1].detected_frames == 2  # the tracker only saw frames 0 and 2


def test_re_detections_attach_once_to_the_latest_frame():
    planner = MaskPlanner(VideoParams(detect_stride=2), DetectorParams())
    planner.push(0, det((10, 10, 50, 50)))
    planner.add_roi(0, det((10, 10, 50, 50)))  # a class frame 0's search skipped (plates between plate frames)
    with pytest.raises(ValueError):
        planner.add_roi(0, det((10, 10, 50, 50)))  # once per frame
    planner.push(1, None)
    with pytest.raises(ValueError):
        planner.add_roi(0, det((10, 10, 50, 50)))  # not the latest frame


def test_plates_are_searched_on_every_plate_stride_frame_and_faces_on_every_detect_stride_frame():
    from pipeline.video.schedule import searched_classes

    both = frozenset(ObjectClass)
    video = VideoParams(detect_stride=2, plate_every=2)
    assert [sorted(searched_classes(i, video, both)) for i in range(5)] == [
        [ObjectClass.FACE, ObjectClass.LICENSE_PLATE], [], [ObjectClass.FACE], [], [ObjectClass.FACE, ObjectClass.LICENSE_PLATE]]
    plates_only = frozenset({ObjectClass.LICENSE_PLATE})
    assert [bool(searched_classes(i, video, plates_only)) for i in range(5)] == [True, False, False, False, True]


def test_faces_are_re_detected_on_every_frame_not_searched_and_plates_on_every_plate_roi_every_th():
    from pipeline.video.schedule import redetected_classes, searched_classes

    both = frozenset(ObjectClass)
    video = VideoParams()  # stride 3, plates every 6th frame, plate re-detection every 3rd
    again = [redetected_classes(i, searched_classes(i, video, both), video, both) for i in range(7)]
    face, plate = frozenset({ObjectClass.FACE}), frozenset({ObjectClass.LICENSE_PLATE})
    assert again == [frozenset(), face, face, plate, face, face, frozenset()]
    never = VideoParams(plate_roi_every=0)
    assert all(ObjectClass.LICENSE_PLATE not in redetected_classes(i, frozenset(), never, both) for i in range(7))
    assert redetected_classes(1, frozenset(), VideoParams(roi_redetect=False), both) == frozenset()


def test_plates_must_be_searched_before_their_tracks_are_dropped():
    with pytest.raises(ValueError, match="lost_frames"):
        VideoParams(detect_stride=10, plate_every=4, lookahead_frames=40)


def test_a_class_not_searched_on_a_frame_keeps_its_tracks_alive_and_interpolated():
    plate = int(ObjectClass.LICENSE_PLATE)
    planner = MaskPlanner(VideoParams(detect_stride=1, plate_every=2, temporal_dilation=0), DetectorParams())
    plans = []
    for index in range(5):
        x = 10 * index
        face = det((x, 0, x + 40, 40))
        if index % 2 == 0:
            both = Detections.concat([face, det((x, 100, x + 60, 120), cls=plate)])
            plans += planner.push(index, both)
        else:
            plans += planner.push(index, face, searched=frozenset({FACE}))
    plans += planner.finish()
    plate_tracks = [[t for t in p.tracks if t.object_class == plate] for p in plans]
    assert all(len(t) == 1 for t in plate_tracks)  # one track, never lost on the frames plates were not searched
    assert len({t[0].track_id for t in plate_tracks}) == 1
    assert plate_tracks[1][0].source == "interpolated" and plate_tracks[1][0].box == pytest.approx((10, 100, 70, 120))


def test_a_track_last_seen_at_the_frame_edge_is_masked_until_its_prediction_leaves_the_frame():
    video = VideoParams(detect_stride=1, lookahead_frames=40, temporal_dilation=0)  # lost_mask_frames 30, edge 60

    def masked_frames(box):
        planner = MaskPlanner(video, DetectorParams(), frame_size=(200, 100))
        frames = [det(box)] * 3 + [Detections.empty()] * 50
        plans = [p for i, d in enumerate(frames) for p in planner.push(i, d)] + planner.finish()
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        return sum(covers(p, centre) for p in plans)

    assert masked_frames((60, 30, 90, 60)) == 3 + 30  # mid-frame: the detections, then lost_mask_frames
    assert masked_frames((175, 30, 200, 60)) == 3 + 50  # at the right edge: half out of view, kept while in frame


def test_without_a_frame_size_no_track_counts_as_at_the_edge():
    planner = MaskPlanner(VideoParams(detect_stride=1, temporal_dilation=0), DetectorParams())
    planner.push(0, det((0, 0, 20, 20)))
    assert not planner.current[0].at_edge


def test_a_review_band_detection_at_the_frame_edge_starts_a_track_that_masks_it_until_it_has_left():
    video = VideoParams(detect_stride=1, lookahead_frames=40, temporal_dilation=0)
    floor = DetectorParams().thresholds(ObjectClass.FACE)
    score = (floor.review_floor + floor.threshold) / 2  # a face cut by the edge scores in the review band

    def masked_frames(box, mask_review_band=True):
        planner = MaskPlanner(video, DetectorParams(), frame_size=(200, 100), mask_review_band=mask_review_band)
        frames = [det(box, score=score)] + [Detections.empty()] * 10
        plans = [p for i, d in enumerate(frames) for p in planner.push(i, d)] + planner.finish()
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        return sum(covers(p, centre) for p in plans)

    assert masked_frames((175, 30, 200, 60)) == 11  # the edge track's prediction, on every frame it is in view
    assert masked_frames((60, 30, 90, 60)) == 1  # mid-frame a review-band detection starts nothing: its own frame
    assert masked_frames((175, 30, 200, 60), mask_review_band=False) == 1  # not masking the band: no track
