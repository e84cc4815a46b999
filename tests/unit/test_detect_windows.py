"""Windows for re-detection around known objects."""

import numpy as np

from pipeline.detect.windows import ROI_SIDES, Window, batches, roi_windows


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


def _sized(side: int, count: int, scale: float = 1.0) -> list[Window]:
    return [Window(index, 0, index + side, side, scale) for index in range(count)]


def test_a_fixed_input_network_takes_any_windows_together_in_order_up_to_the_bounds():
    windows = _sized(100, 3) + _sized(700, 4)  # every window is letterboxed to 640 anyway
    assert list(batches(windows, 640, most=4)) == [[0, 1, 2, 3], [4, 5, 6]]
    by_pixels = list(batches(windows, 640, most=64, pixels=2 * 640 * 640 + 1))
    assert by_pixels == [[0, 1], [2, 3], [4, 5], [6]]


def test_a_free_input_network_takes_windows_of_one_size_together():
    small, large = _sized(64, 5), _sized(512, 3)
    windows = [small[0], large[0], *small[1:], *large[1:]]
    runs = list(batches(windows, None, most=4, pixels=600 * 600))
    assert runs == [[0, 2, 3, 4], [5], [1], [6], [7]]
    assert all(len({windows[i].crop_size for i in run}) == 1 for run in runs)


def test_a_window_larger_than_the_pixel_bound_still_runs_alone():
    assert [len(run) for run in batches(_sized(2000, 2), None, most=8, pixels=1000)] == [1, 1]
    assert [len(run) for run in batches(_sized(100, 3), None, most=1)] == [1, 1, 1]
