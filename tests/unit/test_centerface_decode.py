"""CenterFace decoding from a hand-made heatmap: centre, size and score land where the maths says."""

import numpy as np

from pipeline.detect.centerface import STRIDE, decode


def test_empty_heatmap_decodes_to_nothing():
    boxes, scores = decode(np.zeros((8, 8)), np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), 0.3, 32, 32)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_one_peak_decodes_to_its_box():
    heatmap = np.zeros((20, 30), np.float32)
    scale = np.zeros((2, 20, 30), np.float32)
    offset = np.zeros((2, 20, 30), np.float32)
    heatmap[5, 7] = 0.9
    scale[:, 5, 7] = np.log([10 / STRIDE, 6 / STRIDE])  # height 10, width 6
    offset[:, 5, 7] = [0.25, 0.5]
    boxes, scores = decode(heatmap, scale, offset, 0.5, 80, 120)
    centre_y, centre_x = (5 + 0.25 + 0.5) * STRIDE, (7 + 0.5 + 0.5) * STRIDE
    assert scores.tolist() == [np.float32(0.9)]
    assert np.allclose(boxes[0], [centre_x - 3, centre_y - 5, centre_x + 3, centre_y + 5])


def test_boxes_are_clipped_to_the_image():
    heatmap = np.zeros((4, 4), np.float32)
    heatmap[0, 0] = 1.0
    scale = np.full((2, 4, 4), np.log(40 / STRIDE), np.float32)
    boxes, _ = decode(heatmap, scale, np.zeros((2, 4, 4), np.float32), 0.5, 16, 16)
    assert boxes.min() >= 0 and boxes[0, 2] <= 16 and boxes[0, 3] <= 16
