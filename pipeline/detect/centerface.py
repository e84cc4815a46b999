"""CenterFace: anchor-free face detector (stride 4 heatmap, log-scale box size, sub-cell offsets)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ..errors import ModelError

STRIDE = 4
ALIGN = 32  # input height and width must be multiples of this


class CenterFace:
    family = "centerface"
    fixed_input: int | None = None

    def __init__(self, session: ort.InferenceSession):
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 4:
            raise ModelError("CenterFace contract: one NCHW input and four outputs (heatmap, scale, offset, landmarks)")
        self.session = session
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in outputs[:3]]  # landmarks are not used

    def __call__(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (x1, y1, x2, y2) and scores in ``rgb``'s pixels, before NMS."""
        height, width = rgb.shape[:2]
        padded_h, padded_w = -(-height // ALIGN) * ALIGN, -(-width // ALIGN) * ALIGN
        blob = np.zeros((1, 3, padded_h, padded_w), dtype=np.float32)
        blob[0, :, :height, :width] = rgb.transpose(2, 0, 1)
        heatmap, scale, offset = self.session.run(self.output_names, {self.input_name: blob})
        return decode(heatmap[0, 0], scale[0], offset[0], min_score, height, width)


def decode(heatmap, scale, offset, min_score: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
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
