"""Masking: every touched pixel is masked, strength follows the region, alpha and 16-bit survive."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.mask import apply_masks, coverage, grow, plan_regions, region_box
from pipeline.params import MaskParams, Params
from pipeline.records import Detections, MaskRegion, ObjectClass

SOLID = MaskParams(style="solid", solid_color=(255, 0, 255))


def region(box) -> MaskRegion:
    return MaskRegion(tuple(float(v) for v in box), ObjectClass.FACE, 0.9)


@pytest.mark.parametrize(
    "box",
    [
        (0.0, 0.0, 0.0, 0.0),  # empty: nothing to do, nothing breaks
        (-5.0, -5.0, 3.2, 3.7),  # hangs over the top-left corner
        (95.5, 45.5, 120.0, 80.0),  # hangs over the bottom-right corner
        (10.01, 10.99, 10.02, 11.01),  # smaller than a pixel
        (20.5, 5.5, 40.5, 25.5),  # half-pixel edges
    ],
)
def test_every_pixel_a_box_touches_is_masked(box):
    image = np.zeros((50, 100, 3), np.uint8)
    apply_masks(image, [region(box)], SOLID)
    masked = (image == [255, 0, 255]).all(axis=2)
    x1, y1, x2, y2 = box
    expected = np.zeros((50, 100), bool)
    if x2 > x1 and y2 > y1:
        expected[max(0, math.floor(y1)) : math.ceil(y2), max(0, math.floor(x1)) : math.ceil(x2)] = True
    assert (masked == expected).all()


@given(st.floats(0, 99), st.floats(0, 49), st.floats(0.01, 60), st.floats(0.01, 60))
def test_coverage_map_matches_what_is_painted(x, y, w, h):
    image = np.zeros((50, 100, 3), np.uint8)
    regions = [region((x, y, x + w, y + h))]
    apply_masks(image, regions, SOLID)
    painted = (image == [255, 0, 255]).all(axis=2)
    assert (coverage(image.shape, regions, SOLID) == painted).all()


def _detail(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@pytest.mark.parametrize("size", [24, 96, 480])
def test_blur_destroys_detail_equally_for_small_and_large_regions(size):
    rng = np.random.default_rng(size)
    texture = cv2.resize(rng.integers(0, 255, (size // 4, size // 4, 3), dtype=np.uint8), (size, size),
                         interpolation=cv2.INTER_NEAREST)
    image = texture.copy()
    apply_masks(image, [region((0, 0, size, size))], MaskParams(style="blur"))
    # relative to the region: the same share of detail is left whatever the size (a fixed kernel fails this)
    assert _detail(image) < 0.02 * _detail(texture)
    # the masked patch keeps the region's overall tone (it is not a black box)
    assert abs(float(image.mean()) - float(texture.mean())) < 12


@pytest.mark.parametrize("size", [16, 160, 800])
def test_mosaic_cells_scale_with_the_region(size):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    apply_masks(image, [region((0, 0, size, size))], MaskParams(style="mosaic", mosaic_cells=8))
    assert len(np.unique(image.reshape(-1, 3), axis=0)) <= 64  # 8 x 8 area-averaged cells, whatever the size


def test_alpha_is_left_alone_and_16_bit_is_masked_in_place():
    rgba = np.full((20, 20, 4), 200, np.uint8)
    rgba[..., 3] = np.arange(20, dtype=np.uint8)[None, :]
    before_alpha = rgba[..., 3].copy()
    apply_masks(rgba, [region((0, 0, 20, 20))], SOLID)
    assert (rgba[..., 3] == before_alpha).all() and (rgba[..., :3] == [255, 0, 255]).all()

    deep = np.random.default_rng(1).integers(0, 65535, (40, 40), dtype=np.uint16)
    apply_masks(deep, [region((0, 0, 40, 40))], MaskParams(style="blur"))
    assert deep.dtype == np.uint16 and deep.std() < 4000


def test_ellipse_masks_inside_the_box_only():
    image = np.zeros((40, 40, 3), np.uint8)
    apply_masks(image, [region((0, 0, 40, 40))], MaskParams(style="solid", shape="ellipse", solid_color=(9, 9, 9)))
    masked = (image == 9).all(axis=2)
    assert masked[20, 20] and not masked[0, 0] and not masked[39, 39]
    assert 0.70 < masked.mean() < 0.85  # pi/4 of the box


@pytest.mark.parametrize("shape", [(40, 40), (40, 40, 1), (40, 40, 2), (40, 40, 3), (40, 40, 4)])
def test_ellipse_is_painted_into_the_image_whatever_its_channels(shape):
    # The ellipse is copied through cv2.copyTo, which writes into views OpenCV can address and returns a
    # new array for the others (RGBA's colour channels): every layout must end up masked in place.
    image = np.zeros(shape, np.uint8)
    apply_masks(image, [region((0, 0, 40, 40))], MaskParams(style="solid", shape="ellipse", solid_color=(9, 9, 9)))
    colour = image if image.ndim == 2 else image[..., : max(1, shape[2] - (shape[2] in (2, 4)))]
    inside = (colour == 9).reshape(40, 40, -1).all(axis=2)
    assert inside[20, 20] and not inside[0, 0] and 0.70 < inside.mean() < 0.85
    if len(shape) == 3 and shape[2] in (2, 4):
        assert (image[..., -1] == 0).all()  # alpha untouched


def test_plan_applies_threshold_review_band_and_margin():
    detections = Detections([[10, 10, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]], [0.9, 0.3, 0.05], [1, 1, 1])
    params = Params()
    regions = plan_regions(detections, params, (100, 100))
    assert [r.score for r in regions] == pytest.approx([0.9, 0.3])  # below the review floor: not masked
    assert regions[0].box == pytest.approx(grow((10, 10, 30, 30), params.mask.face_margin, (100, 100)))
    strict = params.model_copy(update={"mask": MaskParams(mask_review_band=False)})
    assert len(plan_regions(detections, strict, (100, 100))) == 1


@pytest.mark.parametrize(
    "box, object_class, expected",
    [
        # a tall face box becomes a square on its long side, centred, then grows by face_margin (0.25)
        ((40, 30, 60, 70), ObjectClass.FACE, (20, 20, 80, 80)),
        # a plate keeps its shape and grows by margin (0.2)
        ((40, 30, 60, 70), ObjectClass.LICENSE_PLATE, (36, 22, 64, 78)),
        # clipped to the image
        ((0, 0, 10, 10), ObjectClass.FACE, (0, 0, 12.5, 12.5)),
    ],
)
def test_region_box_squares_faces_and_grows_by_class_margin(box, object_class, expected):
    assert region_box(box, object_class, MaskParams(), (100, 100)) == pytest.approx(expected)
