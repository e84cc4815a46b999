"""Re-detection windows for a fixed-input detector, packed several to one network input.

A fixed-input model (the plate model: 640x640) letterboxes whatever it is given to its full input, so each
small window around a known plate would cost a whole pass. Packed into a grid on one canvas of the input's
size, at native scale, four 256 px windows cost one pass. A box found on the canvas belongs to the cell that
holds its centre; it is clipped to that cell and mapped back through the cell's window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.detect.windows import Window

Found = tuple[np.ndarray, np.ndarray]  # boxes (N, 4) in the image given, scores (N,)
_FILL = 114  # the letterbox grey YOLO models are trained with: empty canvas reads as background


@dataclass(frozen=True)
class _Cell:
    window: Window
    x: int  # the cell's top-left corner on the canvas
    y: int


def _side(window: Window) -> int:
    return max(window.x1 - window.x0, window.y1 - window.y0)


def pack(windows: list[Window], side: int) -> list[list[_Cell]]:
    """Canvases of ``side`` x ``side``: a grid of cells as large as the largest window (each at most half
    the side, so at least four share a canvas)."""
    if not windows:
        return []
    cell = max(_side(w) for w in windows)
    per_row = max(1, side // cell)
    per_canvas = per_row * per_row
    canvases = []
    for start in range(0, len(windows), per_canvas):
        group = windows[start : start + per_canvas]
        canvases.append([_Cell(w, (i % per_row) * cell, (i // per_row) * cell) for i, w in enumerate(group)])
    return canvases


def detect_packed(
    rgb: np.ndarray, windows: list[Window], side: int, run: Callable[[np.ndarray], Found],
) -> list[tuple[Window, np.ndarray, np.ndarray]]:
    """``run`` (the network at its review floor) on each canvas; per window, its boxes in the window's own
    pixels (as ``Window.to_source`` takes them) and their scores. A window over half the side is not worth
    packing: it is letterboxed alone, as a whole-frame pass would be."""
    small = [w for w in windows if _side(w) <= side // 2]
    results = [(w, *run(w.crop(rgb))) for w in windows if _side(w) > side // 2]
    for cells in pack(small, side):
        canvas = np.full((side, side, 3), _FILL, dtype=np.uint8)
        for cell in cells:
            crop = cell.window.crop(rgb)
            canvas[cell.y : cell.y + crop.shape[0], cell.x : cell.x + crop.shape[1]] = crop
        boxes, scores = run(canvas)
        results += [_in_cell(cell, boxes, scores) for cell in cells]
    return results


def _in_cell(cell: _Cell, boxes: np.ndarray, scores: np.ndarray) -> tuple[Window, np.ndarray, np.ndarray]:
    window = cell.window
    width, height = window.x1 - window.x0, window.y1 - window.y0
    if not len(boxes):
        return window, boxes.reshape(0, 4), scores
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2 - cell.x
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2 - cell.y
    inside = (centre_x >= 0) & (centre_x < width) & (centre_y >= 0) & (centre_y < height)
    local = boxes[inside] - np.array([cell.x, cell.y, cell.x, cell.y], dtype=boxes.dtype)
    local[:, [0, 2]] = np.clip(local[:, [0, 2]], 0, width)
    local[:, [1, 3]] = np.clip(local[:, [1, 3]], 0, height)
    return window, local, scores[inside]
