"""What gets masked, and how: banding by score, margins, pixel-exact regions, blur / mosaic / solid.

Regions are grown outward to whole pixels (floor of the start, ceiling of the end), so a box never leaves
a one-pixel unmasked edge. Strength is relative to the region: a large face gets the same loss of detail
as a small one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import cv2
import numpy as np

from pipeline.params import DetectorParams, MaskParams, Params
from pipeline.records import Detections, MaskRegion, ObjectClass

NO_MASK = 0.05  # a box counts as unmasked when the masks cover less than this share of it (``unmasked``)
BLUR_SUPERSAMPLE = 4  # pixels per blur cell where the blur is smoothed, before scaling up to the region


def confident_and_review(dets: Detections, params: DetectorParams) -> tuple[np.ndarray, np.ndarray]:
    """Boolean arrays: detections at or above their class threshold, and those in the review band."""
    threshold = np.array([params.thresholds(ObjectClass(c)).threshold for c in dets.classes], dtype=np.float32)
    floor = np.array([params.thresholds(ObjectClass(c)).review_floor for c in dets.classes], dtype=np.float32)
    confident = dets.scores >= threshold
    review = ~confident & (dets.scores >= floor)
    return confident, review


def masked_selection(dets: Detections, params: Params) -> np.ndarray:
    confident, review = confident_and_review(dets, params.detector)
    return confident | (review & params.mask.mask_review_band)


def plan_regions(dets: Detections, params: Params, shape: tuple[int, ...],
                 extra_margin: Callable[[np.ndarray], float] = lambda box: 0.0) -> list[MaskRegion]:
    """The regions to mask for these detections: selected by score, grown by the margin (plus
    ``extra_margin`` of the box), clipped."""
    chosen = dets[masked_selection(dets, params)]
    return [
        MaskRegion(region_box(box, ObjectClass(int(c)), params.mask, shape, extra_margin(box)), ObjectClass(int(c)), float(s))
        for box, s, c in zip(chosen.boxes, chosen.scores, chosen.classes)
    ]


def region_box(
    box: Iterable[float], object_class: ObjectClass, params: MaskParams, shape: tuple[int, ...], extra_margin: float = 0.0
) -> tuple[float, float, float, float]:
    """The area masked for one detected box: faces squared, then grown by their class's margin, clipped."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if object_class == ObjectClass.FACE:
        if params.square_faces:
            centre_x, centre_y, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) / 2
            x1, y1, x2, y2 = centre_x - half, centre_y - half, centre_x + half, centre_y + half
        return grow((x1, y1, x2, y2), params.face_margin + extra_margin, shape)
    return grow((x1, y1, x2, y2), params.margin + extra_margin, shape)


def grow(box: Iterable[float], margin: float, shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    height, width = shape[:2]
    return (max(0.0, x1 - dx), max(0.0, y1 - dy), min(float(width), x2 + dx), min(float(height), y2 + dy))


def pixel_bounds(box: Iterable[float], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Every pixel the box touches, as slice bounds (x0, y0, x1, y1), clipped to the image."""
    height, width = shape[:2]
    x1, y1, x2, y2 = box
    return (
        max(0, min(width, math.floor(x1))),
        max(0, min(height, math.floor(y1))),
        max(0, min(width, math.ceil(x2))),
        max(0, min(height, math.ceil(y2))),
    )


def region_footprint(height: int, width: int, shape: str) -> np.ndarray:
    """Which pixels of a (height x width) region are masked: all of them, or a filled ellipse."""
    if shape == "box":
        return np.ones((height, width), dtype=bool)
    footprint = np.zeros((height, width), dtype=np.uint8)
    centre = ((width - 1) / 2, (height - 1) / 2)
    axes = (width / 2, height / 2)
    cv2.ellipse(footprint, (centre, (axes[0] * 2, axes[1] * 2), 0), 1, thickness=-1)
    return footprint.astype(bool)


def coverage(shape: tuple[int, ...], regions: list[MaskRegion], params: MaskParams) -> np.ndarray:
    """A boolean HxW map of the pixels the masks cover (for QC and evaluation)."""
    covered = np.zeros(shape[:2], dtype=bool)
    for region in regions:
        x0, y0, x1, y1 = pixel_bounds(region.box, shape)
        if x1 > x0 and y1 > y0:
            covered[y0:y1, x0:x1] |= region_footprint(y1 - y0, x1 - x0, params.shape)
    return covered


def unmasked(boxes: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The ``boxes`` (N, 4) that the coverage map ``covered`` leaves (nearly) untouched; a box with no pixel in
    the image is not among them."""
    keep = np.zeros(len(boxes), dtype=bool)
    for index, box in enumerate(boxes):
        x0, y0, x1, y1 = pixel_bounds(box, covered.shape)
        region = covered[y0:y1, x0:x1]
        keep[index] = bool(region.size) and float(region.mean()) < NO_MASK
    return boxes[keep]


def apply_masks(image: np.ndarray, regions: list[MaskRegion], params: MaskParams) -> np.ndarray:
    """Mask ``image`` in place (HxW or HxWxC, uint8 or uint16; an alpha channel is left alone)."""
    for region in regions:
        x0, y0, x1, y1 = pixel_bounds(region.box, image.shape)
        if x1 > x0 and y1 > y0:
            apply_footprint(image, (x0, y0, x1, y1), region_footprint(y1 - y0, x1 - x0, params.shape), params)
    return image


def apply_footprint(image: np.ndarray, bounds: tuple[int, int, int, int], footprint: np.ndarray, params: MaskParams) -> None:
    """Mask, in place, the pixels of ``footprint`` (a boolean map of the rectangle ``bounds`` = x0, y0, x1, y1),
    with a strength relative to that rectangle. Any pixel shape fits here: boxes, ellipses, polygons."""
    x0, y0, x1, y1 = bounds
    channels = image.shape[2] if image.ndim == 3 else 1
    colour_channels = channels - 1 if channels in (2, 4) else channels  # LA and RGBA: keep alpha as it is
    patch = image[y0:y1, x0:x1, :colour_channels] if image.ndim == 3 else image[y0:y1, x0:x1]
    if patch.ndim == 3 and patch.shape[2] == 1:
        patch = patch[:, :, 0]
    masked = _render(patch, params)
    if footprint.all():
        patch[...] = masked
        return
    if _opencv_addressable(patch):  # cv2.copyTo writes into the view, 4x faster than numpy's masked copy
        cv2.copyTo(masked, footprint.view(np.uint8), patch)
    else:  # the colour channels of RGBA or LA: pixels OpenCV cannot step over
        np.copyto(patch, masked, where=footprint if patch.ndim == 2 else footprint[:, :, None])


def _opencv_addressable(view: np.ndarray) -> bool:
    """Whether OpenCV can write into ``view`` in place: its pixels packed, only its rows strided."""
    pixel = view.itemsize * (view.shape[2] if view.ndim == 3 else 1)
    return view.strides[1] == pixel and (view.ndim == 2 or view.strides[2] == view.itemsize)


def _render(patch: np.ndarray, params: MaskParams) -> np.ndarray:
    height, width = patch.shape[:2]
    long_side = max(height, width)
    if params.style == "solid":
        filled = np.empty_like(patch)
        colour = np.array(params.solid_color, dtype=np.float64)
        if patch.dtype == np.uint16:
            colour = colour * 257
        filled[...] = colour[: patch.shape[2]] if patch.ndim == 3 else colour.mean()
        return filled
    cells = params.mosaic_cells if params.style == "mosaic" else params.blur_cells
    small_w = max(1, round(width * cells / long_side))
    small_h = max(1, round(height * cells / long_side))
    # INTER_AREA averages every source pixel into the few cells: the detail is gone, not hidden.
    small = cv2.resize(patch, (small_w, small_h), interpolation=cv2.INTER_AREA)
    if params.style == "mosaic":
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST).reshape(patch.shape)
    # Smoothed at a few pixels per cell, then scaled up: each region costs two passes over its own pixels
    # whatever its size (a full-size blur with a kernel of a cell's width cost 5 ms on a 400 px face).
    fine = cv2.resize(small, (small_w * BLUR_SUPERSAMPLE, small_h * BLUR_SUPERSAMPLE), interpolation=cv2.INTER_LINEAR)
    fine = cv2.GaussianBlur(fine, (0, 0), sigmaX=BLUR_SUPERSAMPLE / 2, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(fine, (width, height), interpolation=cv2.INTER_LINEAR).reshape(patch.shape)
