"""Which views of an image a detector sees: whole-image passes at several scales, and tiles.

A window is a source rectangle and the scale at which it is fed to the network. Every detection found in
a window is mapped back with ``to_source``, so all passes speak source pixels and can be merged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..params import ScalePlan


@dataclass(frozen=True)
class Window:
    x0: int
    y0: int
    x1: int
    y1: int
    scale: float  # network pixels per source pixel; for fixed-input models the letterbox decides
    upside_down: bool = False

    @property
    def crop_size(self) -> tuple[int, int]:
        return max(1, round((self.x1 - self.x0) * self.scale)), max(1, round((self.y1 - self.y0) * self.scale))

    def crop(self, image: np.ndarray) -> np.ndarray:
        view = image[self.y0 : self.y1, self.x0 : self.x1]
        if self.scale != 1.0:
            interpolation = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
            view = cv2.resize(view, self.crop_size, interpolation=interpolation)
        return np.ascontiguousarray(view[::-1, ::-1]) if self.upside_down else view

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """Map boxes from the crop's pixels back to the source image."""
        if not len(boxes):
            return boxes
        crop_w, crop_h = self.crop_size
        if self.upside_down:
            boxes = np.stack([crop_w - boxes[:, 2], crop_h - boxes[:, 3], crop_w - boxes[:, 0], crop_h - boxes[:, 1]], 1)
        scale_x = (self.x1 - self.x0) / crop_w
        scale_y = (self.y1 - self.y0) / crop_h
        mapped = boxes * np.array([scale_x, scale_y, scale_x, scale_y], dtype=np.float32)
        mapped += np.array([self.x0, self.y0, self.x0, self.y0], dtype=np.float32)
        return mapped


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering [0, length) with at least ``overlap`` shared."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    count = math.ceil((length - tile) / stride) + 1
    # spread the tiles evenly so the last one ends exactly at the edge
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def plan_windows(height: int, width: int, plan: ScalePlan, fixed_input: int | None) -> list[Window]:
    """All windows for one image. ``fixed_input``: square network side for letterboxing families."""
    long_side = max(height, width)
    windows = []
    whole_scale = 1.0 if fixed_input else min(1.0, plan.max_side / long_side)
    windows.append(Window(0, 0, width, height, whole_scale))
    if plan.rotate_180:
        windows.append(Window(0, 0, width, height, whole_scale, upside_down=True))
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
