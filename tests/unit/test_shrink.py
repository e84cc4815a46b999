"""Pictures scaled down to one long side: the proportions kept, no side below a pixel."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.media.shrink import shrunk


@pytest.mark.parametrize(("shape", "expected"), [((1080, 1920, 3), (360, 640, 3)), ((1920, 1080), (640, 360)),
                                                 ((1, 100_000, 3), (1, 640, 3)), ((100_000, 2), (640, 1))])
def test_the_long_side_becomes_the_one_asked_for_and_no_side_falls_under_a_pixel(shape, expected):
    assert shrunk(np.zeros(shape, np.uint8), 640).shape == expected


def test_a_picture_no_larger_is_itself():
    picture = np.zeros((480, 640, 3), np.uint8)
    assert shrunk(picture, 640) is picture and shrunk(picture, 1000) is picture


def test_it_averages_areas_rather_than_picking_pixels():
    checker = np.indices((400, 400)).sum(axis=0) % 2 * 255
    assert np.allclose(shrunk(checker.astype(np.uint8), 100), 127.5, atol=1)
