"""Edits: polygons are checked, frame ranges are inclusive, suppression goes by box centre, add polygons mask
every pixel they touch and nothing far outside, and relative coordinates fit every resolution."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.edits import AddRegion, EditCounts, Edits, Suppression, box_polygon, polygon_footprint
from pipeline.params import MaskParams
from pipeline.records import MaskRegion, ObjectClass

MAGENTA = (255, 0, 255)
SOLID = MaskParams(style="solid", solid_color=MAGENTA)
TRIANGLE = ((0.1, 0.1), (0.9, 0.2), (0.4, 0.8))


@pytest.mark.parametrize(
    "polygon, message",
    [
        ((), "at least 3 points"),
        (((0.1, 0.1), (0.5, 0.5)), "at least 3 points"),
        (((0.1, 0.1), (1.01, 0.1), (0.5, 0.5)), "outside the picture"),
        (((-0.001, 0.1), (0.9, 0.1), (0.5, 0.5)), "outside the picture"),
        (((0.1, 0.1), (float("nan"), 0.1), (0.5, 0.5)), "outside the picture"),
        (((0.1, 0.1), (0.5, 0.5), (0.9, 0.9)), "no area"),
    ],
)
def test_bad_polygons_are_refused_with_a_reason(polygon, message):
    for make in (AddRegion, Suppression):
        with pytest.raises(ValueError, match=message):
            make(polygon)


@pytest.mark.parametrize("frames", [(-1, 3), (5, 4)])
def test_bad_frame_ranges_are_refused(frames):
    with pytest.raises(ValueError, match="frame range"):
        AddRegion(TRIANGLE, frames=frames)


def test_the_picture_edges_are_valid_coordinates():
    assert AddRegion(box_polygon(0, 0, 1, 1)).polygon == ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def test_merged_keeps_both_in_order_and_empty_is_empty():
    zone, manual = AddRegion(TRIANGLE, origin="zone:door"), AddRegion(box_polygon(0, 0, 0.5, 0.5))
    ignore = Suppression(TRIANGLE, origin="ignore-zone:tv")
    merged = Edits(add=(zone,), suppress=(ignore,)).merged(Edits(add=(manual,)))
    assert merged.add == (zone, manual) and merged.suppress == (ignore,)
    assert Edits().is_empty() and not merged.is_empty()


def face(box, source="detection") -> MaskRegion:
    return MaskRegion(tuple(float(v) for v in box), ObjectClass.FACE, 0.9, source)


def test_filter_regions_drops_by_box_centre_only():
    edits = Edits(suppress=(Suppression(box_polygon(0.5, 0.0, 1.0, 1.0)),))  # the right half of a 200x100 image
    inside = face((120, 10, 160, 50))  # centre x 140: inside
    straddling_in = face((90, 10, 130, 50))  # centre x 110: inside, though it starts in the left half
    straddling_out = face((70, 10, 120, 50))  # centre x 95: outside, though it reaches into the right half
    outside = face((10, 10, 40, 40))
    counts = EditCounts()
    kept, dropped = edits.filter_regions([inside, straddling_in, straddling_out, outside], (100, 200, 3), 0, counts)
    assert kept == [straddling_out, outside] and dropped == 2
    assert counts.detections_suppressed[0] == 2


def test_placed_regions_are_never_suppressed():
    edits = Edits(suppress=(Suppression(box_polygon(0, 0, 1, 1)),))
    placed = [face((10, 10, 20, 20), "manual"), face((10, 10, 20, 20), "zone")]
    assert edits.filter_regions(placed, (100, 100), 0) == (placed, 0)


@pytest.mark.parametrize("frame, active", [(0, False), (9, False), (10, True), (15, True), (20, True), (21, False)])
def test_frame_ranges_are_inclusive(frame, active):
    region = face((10, 10, 20, 20))
    suppressing = Edits(suppress=(Suppression(box_polygon(0, 0, 1, 1), frames=(10, 20)),))
    assert suppressing.filter_regions([region], (100, 100), frame)[1] == int(active)
    adding = Edits(add=(AddRegion(box_polygon(0, 0, 1, 1), frames=(10, 20)),))
    image = np.zeros((20, 20, 3), np.uint8)
    assert adding.apply_adds(image, frame, SOLID) == int(active)
    assert (image == MAGENTA).all(axis=2).all() == active


def test_without_frames_an_edit_is_active_on_every_frame():
    edits = Edits(add=(AddRegion(TRIANGLE),), suppress=(Suppression(TRIANGLE),))
    counts = EditCounts()
    for frame in (0, 1, 10_000):
        assert edits.apply_adds(np.zeros((10, 10, 3), np.uint8), frame, SOLID, counts) == 1
    assert counts.frames_masked[0] == 3


def _centre_distances(polygon, height, width) -> np.ndarray:
    """Signed distance (pixels, positive inside) from every pixel centre to the polygon, computed apart from
    the rasteriser: cv2.pointPolygonTest on the polygon in pixel-edge coordinates."""
    contour = (np.array(polygon) * (width, height)).astype(np.float32)
    return np.array([[cv2.pointPolygonTest(contour, (x + 0.5, y + 0.5), True) for x in range(width)]
                     for y in range(height)])


@pytest.mark.parametrize(
    "polygon",
    [
        TRIANGLE,
        box_polygon(0.25, 0.25, 0.5, 0.5),  # edges on pixel edges
        box_polygon(0.2525, 0.2575, 0.5025, 0.5075),  # edges through pixels
        ((0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.5, 0.3), (0.2, 0.8)),  # not convex
        ((0.3, 0.1), (0.302, 0.1), (0.302, 0.9)),  # thinner than a pixel: still masked along its length
        box_polygon(0, 0, 1, 1),
    ],
)
def test_solid_add_changes_exactly_its_pixels_and_covers_every_pixel_it_touches(polygon):
    height, width = 60, 80
    image = np.zeros((height, width, 3), np.uint8)
    Edits(add=(AddRegion(polygon),)).apply_adds(image, 0, SOLID)
    changed = (image != 0).any(axis=2)
    painted = (image == MAGENTA).all(axis=2)
    assert (changed == painted).all()  # every changed pixel is the zone's colour
    (x0, y0, x1, y1), footprint = polygon_footprint(AddRegion(polygon).polygon, height, width)
    expected = np.zeros((height, width), bool)
    expected[y0:y1, x0:x1] = footprint
    assert (painted == expected).all()
    distance = _centre_distances(polygon, height, width)
    assert painted[distance >= -0.5].all()  # every pixel whose square the polygon reaches (on its axis)
    assert not painted[distance < -1.5].any()  # nothing beyond the ring of pixels it touches


def test_a_box_masks_the_pixels_it_touches_like_a_detection_box():
    (x0, y0, x1, y1), footprint = polygon_footprint(box_polygon(0.25, 0.25, 0.5, 0.5), 400, 400)
    assert footprint.all()
    # Its edges lie on pixel edges 100 and 200: pixels 100..199 are touched. The cv2 fill counts a pixel that
    # only meets the edge as touched too, so at most one more pixel on each side, never one fewer.
    assert 99 <= x0 <= 100 and 99 <= y0 <= 100 and 200 <= x1 <= 201 and 200 <= y1 <= 201


# Derandomized: the same 300 polygons on every run, so CI never meets a new counterexample by chance (25
# random seeds of 60 polygons each passed when the bound was set).
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=3, max_size=6))
def test_every_pixel_a_polygon_touches_is_masked(points):
    height, width = 24, 32
    contour = (np.array(points) * (width, height)).astype(np.float32)
    if cv2.contourArea(contour) < 0.5:
        return  # refused or degenerate: covered by the validation table
    polygon = AddRegion(tuple(points)).polygon
    (x0, y0, x1, y1), footprint = polygon_footprint(polygon, height, width)
    masked = np.zeros((height, width), bool)
    masked[y0:y1, x0:x1] = footprint
    # Supersample each pixel 8x8: any sample inside the polygon means it is touched. To an 8th of a pixel:
    # samples keep that far from the pixel's own edges (a polygon that meets only the boundary line shared
    # with the next pixel does not touch this one), and a sample must be that far inside the polygon.
    tolerance = 1 / 8  # slivers thinner than this may be left: a pixel 7/8 outside a zone is not in it
    samples = np.linspace(tolerance, 1 - tolerance, 8)
    for y in range(height):
        for x in range(width):
            if masked[y, x]:
                continue
            for sy in samples:
                for sx in samples:
                    assert cv2.pointPolygonTest(contour, (x + sx, y + sy), True) < tolerance, (x, y)


def test_relative_zone_masks_the_same_area_at_every_resolution():
    zone = Edits(add=(AddRegion(TRIANGLE),))
    small, large = np.zeros((480, 640, 3), np.uint8), np.zeros((960, 1280, 3), np.uint8)
    zone.apply_adds(small, 0, SOLID)
    zone.apply_adds(large, 0, SOLID)
    small_mask, large_mask = (small != 0).any(axis=2), (large != 0).any(axis=2)
    area = abs(cv2.contourArea(np.array(TRIANGLE, np.float32)))  # share of the picture
    assert small_mask.mean() == pytest.approx(area, rel=0.02)
    assert large_mask.mean() == pytest.approx(area, rel=0.01)
    # Each small pixel is 2x2 large ones: they disagree only along the polygon's edges.
    halved = large_mask.reshape(480, 2, 640, 2).mean(axis=(1, 3))
    disagree = np.abs(halved - small_mask) > 0.5
    perimeter = cv2.arcLength((np.array(TRIANGLE) * (640, 480)).astype(np.float32), True)
    assert disagree.sum() < 2 * perimeter


@pytest.mark.parametrize("style", ["blur", "mosaic"])
def test_blur_and_mosaic_stay_inside_the_polygon(style):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    before = image.copy()
    polygon = AddRegion(TRIANGLE).polygon
    Edits(add=(AddRegion(polygon),)).apply_adds(image, 0, MaskParams(style=style))
    (x0, y0, x1, y1), footprint = polygon_footprint(polygon, 120, 160)
    inside = np.zeros((120, 160), bool)
    inside[y0:y1, x0:x1] = footprint
    changed = (image != before).any(axis=2)
    assert not changed[~inside].any()
    assert changed[inside].mean() > 0.9  # the noise inside is gone, not just nudged at a few pixels
    detail = lambda img: float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F)[inside].var())
    assert detail(image) < 0.1 * detail(before)


def test_alpha_and_grey_images_are_masked_in_their_colour_channels():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 3] = 77
    Edits(add=(AddRegion(box_polygon(0, 0, 1, 1)),)).apply_adds(rgba, 0, SOLID)
    assert (rgba[..., :3] == MAGENTA).all() and (rgba[..., 3] == 77).all()
    grey = np.zeros((40, 40), np.uint8)
    Edits(add=(AddRegion(box_polygon(0, 0, 0.5, 1)),)).apply_adds(grey, 0, SOLID)
    assert (grey[:, :20] == round(sum(MAGENTA) / 3)).all() and (grey[:, 21:] == 0).all()


def test_summary_records_every_edit_with_what_it_did():
    edits = Edits(
        add=(AddRegion(TRIANGLE, frames=(2, 3), origin="zone:door", object_class="other"),),
        suppress=(Suppression(box_polygon(0, 0, 1, 1), origin="ignore-zone:tv"),),
    )
    counts = EditCounts()
    for frame in range(5):
        edits.apply_adds(np.zeros((10, 10, 3), np.uint8), frame, SOLID, counts)
        edits.filter_regions([face((1, 1, 3, 3)), face((5, 5, 7, 7))], (10, 10), frame, counts)
    assert edits.summary(counts) == [
        {"kind": "add", "origin": "zone:door", "polygon": [list(p) for p in TRIANGLE], "frames": [2, 3],
         "object_class": "other", "frames_masked": 2},
        {"kind": "suppress", "origin": "ignore-zone:tv", "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
         "frames": None, "detections_suppressed": 10},
    ]
    assert all("frames_masked" not in r and "detections_suppressed" not in r for r in edits.summary())


def test_empty_edits_change_nothing():
    image = np.full((10, 10, 3), 9, np.uint8)
    assert Edits().apply_adds(image, 0, SOLID) == 0 and (image == 9).all()
    regions = [face((1, 1, 3, 3))]
    assert Edits().filter_regions(regions, (10, 10), 0) == (regions, 0)
    assert Edits().summary(EditCounts()) == []


def test_footprint_is_cached_and_read_only():
    first = polygon_footprint(TRIANGLE, 30, 40)
    assert polygon_footprint(TRIANGLE, 30, 40) is first
    with pytest.raises(ValueError):
        first[1][0, 0] = True


def test_cover_adds_marks_what_apply_adds_masks_on_that_frame():
    edits = Edits(add=(AddRegion(box_polygon(0.5, 0.0, 1.0, 0.5)), AddRegion(box_polygon(0, 0.5, 0.5, 1.0), frames=(3, 4))))
    image = np.full((40, 60, 3), 200, np.uint8)  # a solid fill changes every pixel it masks
    before = image.copy()
    covered = np.zeros((40, 60), dtype=bool)
    edits.cover_adds(covered, 0)
    edits.apply_adds(image, 0, MaskParams(style="solid"))
    assert covered[:20, 30:].all() and not covered[22:].any()  # the frame-3 add is not active on frame 0
    np.testing.assert_array_equal((image != before).any(axis=2), covered)
