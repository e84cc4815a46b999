"""Box geometry: IoU, NMS, windows and letterbox mapping (property tests where the claim is general)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.detect.nms import (
    FUSE_GROWTH,
    FUSE_SCORE_RATIO,
    _hull,
    box_area,
    iou_matrix,
    merge,
    nms,
    nms_groups,
    overlapping,
)
from pipeline.detect.windows import Window, plan_windows, tile_starts, tilted_canvas, turned_ellipses
from pipeline.detect.yolo import Letterbox
from pipeline.params import ScalePlan
from pipeline.records import Detections

coordinate = st.floats(min_value=0, max_value=1000, allow_nan=False)


@st.composite
def boxes(draw, min_size=0, max_size=12):
    count = draw(st.integers(min_size, max_size))
    rows = []
    for _ in range(count):
        x1, y1 = draw(coordinate), draw(coordinate)
        rows.append([x1, y1, x1 + draw(st.floats(1, 300)), y1 + draw(st.floats(1, 300))])
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


@given(boxes(min_size=1))
def test_iou_is_symmetric_bounded_and_one_on_itself(b):
    matrix = iou_matrix(b, b)
    assert np.allclose(matrix, matrix.T, atol=1e-6)
    assert (matrix >= 0).all() and (matrix <= 1 + 1e-6).all()
    assert np.allclose(np.diag(matrix), 1.0, atol=1e-5)


@given(boxes(min_size=1), st.floats(0.1, 0.9))
def test_nms_keeps_the_best_and_no_kept_pair_overlaps_beyond_threshold(b, threshold):
    scores = np.linspace(1.0, 0.1, len(b)).astype(np.float32)[::-1].copy()
    keep = nms(b, scores, threshold)
    assert keep[0] == int(np.argmax(scores))
    kept = b[keep]
    overlap = iou_matrix(kept, kept) - np.eye(len(kept))
    assert (overlap <= threshold + 1e-6).all()
    # every dropped box overlaps some better kept box beyond the threshold
    dropped = np.setdiff1d(np.arange(len(b)), keep)
    for index in dropped:
        better = keep[scores[keep] >= scores[index]]
        assert iou_matrix(b[index : index + 1], b[better]).max() > threshold


def test_nms_drops_a_box_lying_inside_a_better_one():
    outer = [0, 0, 100, 100]
    inner = [10, 10, 40, 40]  # IoU 0.09, but wholly inside
    keep = nms(np.array([outer, inner], np.float32), np.array([0.9, 0.5], np.float32), 0.4, containment=0.8)
    assert keep.tolist() == [0]


def test_merge_never_suppresses_across_classes():
    same_box = [[0, 0, 50, 50], [0, 0, 50, 50]]
    merged = merge(Detections(same_box, [0.9, 0.8], [1, 2]), 0.4)
    assert sorted(merged.classes.tolist()) == [1, 2]


@pytest.mark.parametrize(
    "length, tile, overlap",
    [(0, 10, 0.25), (10, 10, 0.25), (11, 10, 0.25), (1000, 320, 0.25), (1920, 1280, 0.5), (5000, 640, 0.0)],
)
def test_tiles_cover_the_whole_length_with_the_overlap_asked(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] + tile >= length
    for a, b in zip(starts, starts[1:]):
        assert b - a <= tile * (1 - overlap) + 1  # shared at least `overlap` of a tile


@given(st.integers(16, 3000), st.integers(16, 3000), st.floats(0.25, 3.0), boxes(min_size=1))
def test_window_maps_crop_pixels_back_to_source(height, width, scale, b):
    window = Window(0, 0, width, height, scale)
    crop_w, crop_h = window.crop_size
    in_crop = b * np.array([crop_w / width, crop_h / height] * 2, np.float32)
    assert np.allclose(window.to_source(in_crop), b, rtol=1e-4, atol=1e-2)


@given(st.integers(4, 60), st.integers(4, 60), st.sampled_from([1.0, 2.0, 3.0]), st.integers(0, 3), st.data())
def test_a_turned_window_finds_the_same_pixels(height, width, scale, turns, data):
    """A bright block found in the scaled crop, turned any number of quarter turns, maps back onto the block
    in the source."""
    x0 = data.draw(st.integers(0, width - 2))
    y0 = data.draw(st.integers(0, height - 2))
    x1 = data.draw(st.integers(x0 + 1, width))
    y1 = data.draw(st.integers(y0 + 1, height))
    image = np.zeros((height, width, 3), np.uint8)
    image[y0:y1, x0:x1] = 255
    window = Window(0, 0, width, height, scale, turns=turns)
    crop = window.crop(image)
    assert crop.shape[1::-1] == window.crop_size  # what the network is fed, (width, height)
    rows, cols = np.nonzero(crop[:, :, 0] > 127)
    found = np.array([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], np.float32)
    assert np.allclose(window.to_source(found), [[x0, y0, x1, y1]], atol=1.0)


def test_a_quarter_turn_is_counter_clockwise_and_swaps_the_sides():
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, 2] = 255  # the top-right pixel
    crop = Window(0, 0, 3, 2, 1.0, turns=1).crop(image)
    assert crop.shape[:2] == (3, 2) and crop[0, 0, 0] == 255  # turned left: now top-left


@given(st.integers(40, 400), st.integers(40, 400), st.sampled_from([0.5, 1.0, 1.5]), st.sampled_from([45.0, -45.0, 20.0]),
       st.data())
@settings(max_examples=60, deadline=None)
def test_a_tilted_window_finds_a_round_object_where_it_is(height, width, scale, tilt, data):
    """A disc found in the tilted crop maps back onto the disc in the source: the box around its inscribed
    ellipse turned back, which for a round object is the object's own box."""
    radius = data.draw(st.integers(6, min(height, width) // 3))
    cx = data.draw(st.integers(radius, width - radius))
    cy = data.draw(st.integers(radius, height - radius))
    image = np.zeros((height, width, 3), np.uint8)
    cv2.circle(image, (cx, cy), radius, (255, 255, 255), -1)
    window = Window(0, 0, width, height, scale, tilt=tilt)
    crop = window.crop(image)
    assert crop.shape[1::-1] == window.crop_size and window.turned
    assert crop[:, :, 0].sum() == pytest.approx(image[:, :, 0].sum() * scale * scale, rel=0.15)  # nothing cut off
    rows, cols = np.nonzero(crop[:, :, 0] > 127)
    found = np.array([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], np.float32)
    tolerance = 1.5 / scale + 1
    assert np.allclose(window.to_source(found), [[cx - radius, cy - radius, cx + radius + 1, cy + radius + 1]],
                       atol=tolerance)


def test_a_tilt_is_counter_clockwise_and_grows_the_canvas_to_hold_the_picture():
    matrix, (width, height) = tilted_canvas(200, 100, 45)
    assert (width, height) == (213, 213)  # (200 + 100) / sqrt(2), rounded up
    corners = np.array([[0, 0, 1], [200, 0, 1], [0, 100, 1], [200, 100, 1]], np.float64) @ matrix.T
    assert corners.min() >= -1e-6 and corners[:, 0].max() <= width and corners[:, 1].max() <= height
    right_end = np.array([200, 50, 1.0]) @ matrix.T  # the middle of the right edge rises: counter-clockwise
    assert right_end[1] < height / 2


def test_a_turned_ellipse_keeps_a_square_and_narrows_a_wide_box_less_than_its_corners():
    matrix = cv2.getRotationMatrix2D((0, 0), 45, 1.0)
    square = turned_ellipses(np.array([[-10, -10, 10, 10]], np.float64), matrix)[0]
    assert np.allclose(square, [-10, -10, 10, 10])
    wide = turned_ellipses(np.array([[-40, -10, 40, 10]], np.float64), matrix)[0]
    corners_half = (40 + 10) / np.sqrt(2)  # the box around the turned corners
    assert np.allclose(wide[2], wide[3]) and wide[2] == pytest.approx(np.hypot(40, 10) / np.sqrt(2))
    assert wide[2] < corners_half


def test_plan_windows_adds_upscale_and_tiles_only_where_asked():
    plan = ScalePlan(max_side=1920, upscale_below=1024, tile_above=2400, tile_size=1280)
    assert len(plan_windows(480, 640, plan, None)) == 2  # whole + 2x
    turned = plan.model_copy(update={"rotate_180": True, "downscale": True})
    assert [(w.scale, w.turns) for w in plan_windows(480, 640, turned, None)] == [(1.0, 0), (1.0, 2), (0.5, 0), (2.0, 0)]
    sideways = plan.model_copy(update={"rotate_90": True})
    assert [(w.scale, w.turns) for w in plan_windows(480, 640, sideways, None)] == [(1.0, 0), (1.0, 1), (1.0, 3), (2.0, 0)]
    tilted = plan.model_copy(update={"tilt_45": True})
    assert [(w.scale, w.tilt) for w in plan_windows(480, 640, tilted, None)] == [(1.0, 0), (1.0, 45), (1.0, -45), (2.0, 0)]
    one_way = tilted.model_copy(update={"tilt_sides": (-45,)})  # a shot whose faces lean one way
    assert [(w.scale, w.tilt) for w in plan_windows(480, 640, one_way, None)] == [(1.0, 0), (1.0, -45), (2.0, 0)]
    large = plan_windows(1080, 1920, tilted, None)[1]  # its tilted canvas, 2122 wide, is held to max_side
    assert max(large.crop_size) <= 1920 < max(tilted_canvas(1920, 1080, 45)[1])
    assert len(plan_windows(1080, 1920, plan, None)) == 1  # whole only
    big = plan_windows(3000, 4000, plan, None)
    assert big[0].scale == pytest.approx(1920 / 4000) and len(big) > 4  # whole (downscaled) + native tiles


@given(st.integers(8, 4000), st.integers(8, 4000), st.sampled_from([320, 640, 1280]), st.data())
@settings(max_examples=200)
def test_letterbox_inverse_maps_back_to_source_pixels(height, width, size, data):
    letterbox = Letterbox(height, width, size)
    x1 = data.draw(st.floats(0, width - 1))
    y1 = data.draw(st.floats(0, height - 1))
    source = np.array([[x1, y1, x1 + 1, y1 + 1]], np.float32)
    left, top = letterbox.offsets()
    forward = source * letterbox.ratio + np.array([left, top, left, top], np.float32)
    assert np.allclose(letterbox.invert(forward), source, atol=1e-2 * max(1, 1 / letterbox.ratio))


def test_letterbox_output_is_square_and_padded_with_114():
    image = np.zeros((100, 300, 3), np.uint8)
    boxed = Letterbox(100, 300, 640).apply(image)
    assert boxed.shape == (640, 640, 3)
    assert (boxed[0, 0] == 114).all() and (boxed[320, 320] == 0).all()


def test_merge_widens_a_partial_box_to_the_whole_object():
    whole = [100, 100, 220, 150]  # the object seen in the whole-image pass
    cut = [100, 100, 170, 150]  # the part a tile saw, scored higher
    faint = [100, 100, 300, 150]  # a low-score candidate it suppresses: not allowed to widen the box
    merged = merge(Detections([whole, cut, faint], [0.6, 0.9, 0.2], [2, 2, 2]), 0.3)
    assert len(merged) == 1
    assert merged.scores[0] == pytest.approx(0.9)
    assert merged.boxes[0].tolist() == whole


def test_merge_does_not_swell_boxes_that_only_jitter_between_passes():
    jittered = [[100, 100, 150, 160], [103, 98, 152, 158], [98, 102, 149, 163]]
    merged = merge(Detections(jittered, [0.9, 0.8, 0.7], [1, 1, 1]), 0.4)
    assert len(merged) == 1 and merged.boxes[0].tolist() == jittered[0]


def test_overlapping_measures_the_shared_area_against_the_smaller_box():
    big = np.array([[0, 0, 100, 100]], np.float32)
    boxes = np.array([[10, 10, 30, 30], [90, 90, 130, 130], [200, 200, 210, 210], [40, 0, 160, 100]], np.float32)
    # inside; a quarter of the small box; apart; 60% of the big box (and of itself)
    assert overlapping(boxes, big, 0.5)[:, 0].tolist() == [True, False, False, True]
    assert overlapping(boxes, big, 0.7)[:, 0].tolist() == [True, False, False, False]
    assert overlapping(boxes, np.zeros((0, 4), np.float32), 0.5).shape == (4, 0)


def test_letterbox_of_an_input_already_the_networks_size_is_the_input_itself():
    canvas = np.random.default_rng(0).integers(0, 255, (640, 640, 3), dtype=np.uint8)  # a packed canvas
    letterbox = Letterbox(640, 640, 640)
    assert letterbox.apply(canvas) is canvas and letterbox.offsets() == (0, 0) and letterbox.ratio == 1


def _merge_one_partner_at_a_time(detections: Detections, iou_threshold: float, containment: float = 0.8) -> Detections:
    """``merge`` as it was written before its partners were found in one array operation: the reference."""
    fused = []
    for object_class in np.unique(detections.classes):
        subset = detections[detections.classes == object_class]
        boxes, kept = subset.boxes.copy(), []
        for best, suppressed in nms_groups(subset.boxes, subset.scores, iou_threshold, containment):
            confident = suppressed[subset.scores[suppressed] >= FUSE_SCORE_RATIO * subset.scores[best]]
            own_area = max(float(box_area(subset.boxes[best : best + 1])[0]), 1e-9)
            partners = [i for i in confident if box_area(_hull(subset.boxes[[best, i]])[None])[0] >= FUSE_GROWTH * own_area]
            if partners:
                boxes[best] = _hull(subset.boxes[[best, *partners]])
            kept.append(best)
        fused.append(Detections(boxes[kept], subset.scores[kept], subset.classes[kept]))
    return Detections.concat(fused)


@given(st.integers(0, 40), st.integers(0, 2**31 - 1))
@settings(max_examples=200)
def test_merge_gives_exactly_what_it_gave_one_partner_at_a_time(count, seed):
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, 200, (count, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(1, 120, (count, 2))], axis=1).astype(np.float32)
    found = Detections(boxes, rng.uniform(0.05, 1, count).astype(np.float32), rng.integers(1, 3, count))
    merged, reference = merge(found, 0.4), _merge_one_partner_at_a_time(found, 0.4)
    np.testing.assert_array_equal(merged.boxes, reference.boxes)
    np.testing.assert_array_equal(merged.scores, reference.scores)
    np.testing.assert_array_equal(merged.classes, reference.classes)
