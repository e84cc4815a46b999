"""Windows for re-detection around known objects."""

import numpy as np

from pipeline.detect.windows import ROI_SIDES, roi_windows


def test_a_window_is_centred_on_the_box_and_grown_by_the_context_to_a_ladder_side():
    (window,) = roi_windows(1000, 1000, np.array([[400, 400, 500, 450]]), context=1.0, min_side=64)
    assert (window.x1 - window.x0, window.y1 - window.y0) == (384, 384)  # 3x the longer side, rounded up
    assert (window.x0 + window.x1) / 2 == 450 and (window.y0 + window.y1) / 2 == 425
    assert window.scale == 1.0


def test_windows_near_the_edge_are_shifted_inside_so_their_shape_stays_the_same():
    small, edge = roi_windows(480, 640, np.array([[100, 100, 104, 104], [620, 460, 660, 500]]), 1.0, 64)
    assert (small.x1 - small.x0, small.y1 - small.y0) == (64, 64)
    assert (edge.x0, edge.y0, edge.x1, edge.y1) == (640 - 128, 480 - 128, 640, 480)


def test_few_shapes_over_many_box_sizes():
    boxes = np.array([[10, 10, 10 + s, 10 + s] for s in range(8, 300)])
    shapes = {(w.x1 - w.x0, w.y1 - w.y0) for w in roi_windows(1080, 1920, boxes, 1.0, 64)}
    assert len(shapes) <= 9 and all(w == h and w in ROI_SIDES for w, h in shapes)


def test_a_window_larger_than_the_image_is_clipped_to_it():
    (window,) = roi_windows(200, 300, np.array([[100, 50, 250, 150]]), 1.0, 64)
    assert (window.x0, window.y0, window.x1, window.y1) == (0, 0, 300, 200)


def test_a_box_outside_the_picture_gives_no_window():
    assert roi_windows(480, 640, np.array([[700, 500, 760, 560]]), 1.0, 64) == []
