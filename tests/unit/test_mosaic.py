"""Re-detection windows packed onto one fixed-size canvas: what the network finds maps back to each window."""

from __future__ import annotations

import numpy as np

from pipeline.detect.mosaic import detect_packed, pack
from pipeline.detect.windows import Window


class BrightSquares:
    """A stand-in network: every white square on the canvas it is given is a detection (score 0.9)."""

    def __init__(self) -> None:
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        self.shapes.append(image.shape)
        ys, xs = np.nonzero(image[:, :, 0] == 255)
        if not len(xs):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes = []
        for x, y in zip(xs, ys):  # top-left corners of 10 px squares
            if (x == 0 or image[y, x - 1, 0] != 255) and (y == 0 or image[y - 1, x, 0] != 255):
                boxes.append([x, y, x + 10, y + 10])
        return np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32)


def test_four_small_windows_share_one_canvas_and_their_finds_map_back():
    image = np.zeros((400, 900, 3), np.uint8)
    corners = [(40, 40), (300, 100), (600, 250), (800, 30)]
    for x, y in corners:
        image[y : y + 10, x : x + 10] = 255
    windows = [Window(max(0, x - 50), max(0, y - 30), max(0, x - 50) + 128, max(0, y - 30) + 128, 1.0) for x, y in corners]
    network = BrightSquares()
    found = detect_packed(image, windows, 640, network)
    assert network.calls == 1 and network.shapes == [(640, 640, 3)]
    mapped = sorted(tuple(w.to_source(b)[0][:2].round()) for w, b, s in found if len(b))
    assert mapped == sorted((float(x), float(y)) for x, y in corners)


def test_a_find_belongs_to_the_cell_holding_its_centre_only():
    image = np.zeros((200, 400, 3), np.uint8)
    image[20:30, 20:30] = 255
    windows = [Window(0, 0, 100, 100, 1.0), Window(200, 0, 300, 100, 1.0)]  # the second holds nothing
    found = detect_packed(image, windows, 640, BrightSquares())
    assert [len(b) for _, b, _ in found] == [1, 0]


def test_large_windows_are_letterboxed_alone_and_many_small_ones_take_several_canvases():
    network = BrightSquares()
    image = np.zeros((1080, 1920, 3), np.uint8)
    detect_packed(image, [Window(0, 0, 512, 512, 1.0)], 640, network)
    assert network.shapes == [(512, 512, 3)]  # over half the input: the network letterboxes it as it is
    small = [Window(i * 60, 0, i * 60 + 128, 128, 1.0) for i in range(30)]
    assert [len(c) for c in pack(small, 640)] == [25, 5]  # 128 px cells, five rows of five on a canvas
