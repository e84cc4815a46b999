"""Which views of an image a detector sees: whole-image passes at several scales, and tiles.

A window is a source rectangle and the scale at which it is fed to the network. Every detection found in
a window is mapped back with ``to_source``, so all passes speak source pixels and can be merged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.media.turn import turned
from pipeline.params import ScalePlan


@dataclass(frozen=True)
class Window:
    x0: int
    y0: int
    x1: int
    y1: int
    scale: float  # network pixels per source pixel; for fixed-input models the letterbox decides
    turns: int = 0  # quarter turns counter-clockwise (as np.rot90) after scaling: 2 is upside down
    # Degrees counter-clockwise after scaling, on a canvas grown to hold all of the picture (black corners);
    # a window is tilted or turned, not both.
    tilt: float = 0.0

    @property
    def scaled_size(self) -> tuple[int, int]:
        """(width, height) of the source rectangle at the window's scale, before it is turned."""
        return max(1, round((self.x1 - self.x0) * self.scale)), max(1, round((self.y1 - self.y0) * self.scale))

    @property
    def turned(self) -> bool:
        """Whether the picture is fed lying another way than upright or upside down: turned a quarter, or tilted."""
        return bool(self.turns % 2 or self.tilt)

    @property
    def crop_size(self) -> tuple[int, int]:
        """(width, height) of what the network is fed."""
        width, height = self.scaled_size
        if self.tilt:
            return tilted_canvas(width, height, self.tilt)[1]
        return (height, width) if self.turns % 2 else (width, height)

    def crop(self, image: np.ndarray) -> np.ndarray:
        view = image[self.y0 : self.y1, self.x0 : self.x1]
        if self.scale != 1.0:
            interpolation = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
            view = cv2.resize(view, self.scaled_size, interpolation=interpolation)
        if self.tilt:
            matrix, canvas = tilted_canvas(view.shape[1], view.shape[0], self.tilt)
            return cv2.warpAffine(view, matrix, canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return turned(view, self.turns)

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """Map boxes from the crop's pixels back to the source image."""
        if not len(boxes):
            return boxes
        width, height = self.scaled_size
        if self.tilt:
            boxes = turned_ellipses(boxes, cv2.invertAffineTransform(tilted_canvas(width, height, self.tilt)[0]))
        for turn in range(self.turns % 4, 0, -1):
            # undo one quarter turn counter-clockwise of an image that was ``before`` pixels wide
            before = width if turn % 2 else height
            boxes = np.stack([before - boxes[:, 3], boxes[:, 0], before - boxes[:, 1], boxes[:, 2]], 1)
        scale_x = (self.x1 - self.x0) / width
        scale_y = (self.y1 - self.y0) / height
        mapped = boxes * np.array([scale_x, scale_y, scale_x, scale_y], dtype=np.float32)
        mapped += np.array([self.x0, self.y0, self.x0, self.y0], dtype=np.float32)
        return mapped


def tilted_canvas(width: int, height: int, degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The affine map that tilts a ``width`` x ``height`` picture by ``degrees`` counter-clockwise about its
    centre onto a canvas that holds all of it, and that canvas's (width, height)."""
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    canvas = math.ceil(width * cos + height * sin), math.ceil(width * sin + height * cos)
    matrix[:, 2] += (canvas[0] - width) / 2, (canvas[1] - height) / 2
    return matrix, canvas


def turned_ellipses(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Boxes (x1, y1, x2, y2) moved by the rotation ``matrix`` (2x3): each box's inscribed ellipse turned, and
    the box around that. A face is round, so this box hugs it where the box around the turned corners would
    grow by up to 41%."""
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, np.ones(len(boxes))], 1)
    x, y = (centres @ matrix.T).T
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    half_w, half_h = (boxes[:, 2] - boxes[:, 0]) / 2, (boxes[:, 3] - boxes[:, 1]) / 2
    across = np.hypot(half_w * cos, half_h * sin)
    down = np.hypot(half_w * sin, half_h * cos)
    return np.stack([x - across, y - down, x + across, y + down], 1).astype(boxes.dtype)


def batches(windows: list[Window], fixed_input: int | None, most: int, pixels: int | None = None) -> Iterator[list[int]]:
    """The positions of ``windows`` in the runs a network takes in one call: at most ``most`` windows and (if
    given) ``pixels`` input pixels a run, at least one window. A fixed-input network letterboxes every window
    to its square, so any windows share a run, in order; a free-input one takes windows of one crop size."""
    groups: dict[tuple[int, int], list[int]] = {}  # the network's input size -> the windows fed at it
    for position, window in enumerate(windows):
        groups.setdefault((fixed_input, fixed_input) if fixed_input else window.crop_size, []).append(position)
    for (width, height), group in groups.items():
        per_run = max(1, min(most, pixels // (width * height) if pixels else most))
        for start in range(0, len(group), per_run):
            yield group[start : start + per_run]


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering [0, length) with at least ``overlap`` shared."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    count = math.ceil((length - tile) / stride) + 1
    # spread the tiles evenly so the last one ends exactly at the edge
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


TILT_DEGREES = 45.0  # ``tilt_45``: the tilted views (``tilt_sides``) and the canvas their scale is held to


def plan_windows(height: int, width: int, plan: ScalePlan, fixed_input: int | None) -> list[Window]:
    """All windows for one image. ``fixed_input``: square network side for letterboxing families."""
    long_side = max(height, width)
    windows = []
    whole_scale = 1.0 if fixed_input else min(1.0, plan.max_side / long_side)
    windows.append(Window(0, 0, width, height, whole_scale))
    if plan.rotate_180:
        windows.append(Window(0, 0, width, height, whole_scale, turns=2))
    if plan.rotate_90:
        windows += [Window(0, 0, width, height, whole_scale, turns=turns) for turns in (1, 3)]
    if plan.tilt_45:
        # The tilted canvas is up to 1.41 times the picture's side: held to ``max_side`` as the whole pass is.
        grown = max(tilted_canvas(width, height, TILT_DEGREES)[1])
        tilt_scale = 1.0 if fixed_input else min(1.0, plan.max_side / grown)
        windows += [Window(0, 0, width, height, tilt_scale, tilt=float(degrees)) for degrees in dict.fromkeys(plan.tilt_sides)]
    if plan.downscale and long_side * whole_scale >= 128:
        windows.append(Window(0, 0, width, height, whole_scale / 2))
    if plan.upscale_below and long_side < plan.upscale_below:
        if fixed_input:
            windows += _tiles(height, width, fixed_input // 2, plan.tile_overlap, 1.0)
        else:
            windows.append(Window(0, 0, width, height, min(2.0, 2 * plan.max_side / long_side)))
    if long_side > plan.tile_above:
        windows += _tiles(height, width, plan.tile_size, plan.tile_overlap, 1.0)
    return windows


def _tiles(height: int, width: int, size: int, overlap: float, scale: float) -> list[Window]:
    return [
        Window(x, y, min(width, x + size), min(height, y + size), scale)
        for y in tile_starts(height, size, overlap)
        for x in tile_starts(width, size, overlap)
    ]


# Window sides for re-detection come from this ladder, so a detector sees a handful of input shapes per
# video: on a GPU every new shape costs a kernel search and allocations worth many frames.
ROI_SIDES = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)


def roi_windows(height: int, width: int, boxes: np.ndarray, context: float, min_side: int) -> list[Window]:
    """A native-scale square window around each box, for re-detecting known objects cheaply.

    The side is ``1 + 2 * context`` times the box's longer side (at least ``min_side``), rounded up to the
    ladder ``ROI_SIDES``; the window is centred on the box and shifted to lie inside the image (clipped only
    where the image is smaller than the window).
    """
    windows = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            continue  # predicted wholly outside the picture: nothing to search
        wanted = max(min_side, (1 + 2 * context) * max(x2 - x1, y2 - y1))
        side = next((s for s in ROI_SIDES if s >= wanted), ROI_SIDES[-1])
        x0, x_end = _span((x1 + x2) / 2, side, width)
        y0, y_end = _span((y1 + y2) / 2, side, height)
        windows.append(Window(x0, y0, x_end, y_end, 1.0))
    return windows


def _span(centre: float, side: int, length: int) -> tuple[int, int]:
    """[start, end) of a window of ``side`` centred on ``centre``, shifted to fit in [0, length)."""
    if side >= length:
        return 0, length
    start = min(max(0, round(centre - side / 2)), length - side)
    return start, start + side
