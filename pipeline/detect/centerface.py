"""CenterFace: anchor-free face detector (stride 4 heatmap, log-scale box size, sub-cell offsets)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from pipeline.detect.base import Family, Found, register
from pipeline.detect.onnx import make_spatial_dims_dynamic
from pipeline.errors import ModelError

STRIDE = 4
ALIGN = 32  # input height and width must be multiples of this


class CenterFace:
    """A ``Detector`` of any input size: the image is padded to a multiple of ``ALIGN``, never resized."""

    fixed_input: int | None = None

    def __init__(self, session: ort.InferenceSession):
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 4:
            raise ModelError("CenterFace contract: one NCHW input and four outputs (heatmap, scale, offset, landmarks)")
        self.session = session
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in outputs[:3]]  # landmarks are not used

    def __call__(self, rgb: np.ndarray, min_score: float) -> Found:
        """Boxes (x1, y1, x2, y2) and scores in ``rgb``'s pixels, before NMS."""
        return self.batch([rgb], min_score)[0]

    def run_once(self, options: ort.RunOptions) -> None:
        """One run on the smallest input, with ``options`` (e.g. arena shrinkage)."""
        blob = np.zeros((1, ALIGN, ALIGN, 3), dtype=np.uint8)
        self.session.run(self.output_names, {self.input_name: blob}, options)

    def batch(self, images: list[np.ndarray], min_score: float) -> list[Found]:
        """``__call__`` on several images of one size in a single run (one call's overhead, not many)."""
        height, width = images[0].shape[:2]
        padded_h, padded_w = -(-height // ALIGN) * ALIGN, -(-width // ALIGN) * ALIGN
        for rgb in images:
            if rgb.shape[:2] != (height, width):
                raise ValueError(f"a batch takes images of one size: {rgb.shape[:2]} and {(height, width)}")
        if (padded_h, padded_w) == (height, width):  # most windows: nothing to pad
            blob = np.ascontiguousarray(images[0])[None] if len(images) == 1 else np.stack(images)
        else:
            blob = np.zeros((len(images), padded_h, padded_w, 3), dtype=np.uint8)  # the graph converts (frontend.py)
            for slot, rgb in zip(blob, images):
                slot[:height, :width] = rgb
        heatmap, scale, offset = self.session.run(self.output_names, {self.input_name: blob})
        return [decode(heatmap[i, 0], scale[i], offset[i], min_score, height, width) for i in range(len(images))]


def decode(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, min_score: float, height: int, width: int) -> Found:
    rows, cols = np.nonzero(heatmap >= min_score)
    scores = heatmap[rows, cols].astype(np.float32)
    box_h = np.exp(scale[0, rows, cols]) * STRIDE
    box_w = np.exp(scale[1, rows, cols]) * STRIDE
    centre_y = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    centre_x = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    boxes = np.stack(
        [centre_x - box_w / 2, centre_y - box_h / 2, centre_x + box_w / 2, centre_y + box_h / 2], axis=1
    ).astype(np.float32)
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    return boxes.reshape(-1, 4), scores


def _build(session: ort.InferenceSession, num_classes: int) -> CenterFace:
    return CenterFace(session)  # one heatmap: the class is the one its ModelSpec declares


# Fully convolutional: the stored fixed shape is freed, so crops and frames of any size run as they are.
register(Family("centerface", fixed_input=False, prepare=make_spatial_dims_dynamic, input_divisor=1.0, build=_build))
