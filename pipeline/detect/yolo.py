"""YOLOv5/v8-style detectors (boxes, segmentation heads ignored): letterbox in, decode out."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from pipeline.detect.base import Family, Found, register
from pipeline.errors import ModelError

PAD_VALUE = 114


def drop_extra_outputs(model: onnx.ModelProto) -> None:
    """Keep only the detection output: the mask-prototype branch of a -seg export is dead weight here."""
    first = model.graph.output[0]
    del model.graph.output[1:]
    model.graph.output[0].CopyFrom(first)


class Letterbox:
    """Resize keeping the aspect ratio, pad to a square; and the inverse mapping for boxes."""

    def __init__(self, height: int, width: int, size: int):
        self.ratio = min(size / height, size / width)
        self.new_w, self.new_h = max(1, round(width * self.ratio)), max(1, round(height * self.ratio))
        self.pad_x, self.pad_y = (size - self.new_w) / 2, (size - self.new_h) / 2
        self.size = size

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        interpolation = cv2.INTER_AREA if self.ratio < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(rgb, (self.new_w, self.new_h), interpolation=interpolation)
        top, left = int(round(self.pad_y - 0.1)), int(round(self.pad_x - 0.1))
        return cv2.copyMakeBorder(
            resized, top, self.size - self.new_h - top, left, self.size - self.new_w - left,
            cv2.BORDER_CONSTANT, value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
        )

    def offsets(self) -> tuple[int, int]:
        return int(round(self.pad_x - 0.1)), int(round(self.pad_y - 0.1))

    def invert(self, boxes: np.ndarray) -> np.ndarray:
        left, top = self.offsets()
        shifted = boxes - np.array([left, top, left, top], dtype=np.float32)
        return (shifted / self.ratio).astype(np.float32)


class Yolo:
    """A fixed-input ``Detector``. ``version`` 8: output (1, 4 + classes [+ mask coeffs], anchors);
    5: (1, anchors, 5 + classes)."""

    fixed_input: int

    def __init__(self, session: ort.InferenceSession, *, version: int, num_classes: int):
        inputs = session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError("YOLO contract: one NCHW input")
        height, width = inputs[0].shape[2:]
        if not (isinstance(height, int) and height == width):
            raise ModelError(f"YOLO contract: a fixed square input, got {inputs[0].shape}")
        self.session = session
        self.version = version
        self.num_classes = num_classes
        self.fixed_input = height
        self.input_name = inputs[0].name
        self.input_dtype: type[np.floating] = np.float16 if "float16" in inputs[0].type else np.float32
        self.output_name = session.get_outputs()[0].name
        rank_ok = len(session.get_outputs()[0].shape) == 3
        if not rank_ok:
            raise ModelError(f"YOLO contract: a 3-D detection output, got {session.get_outputs()[0].shape}")

    def __call__(self, rgb: np.ndarray, min_score: float) -> Found:
        height, width = rgb.shape[:2]
        letterbox = Letterbox(height, width, self.fixed_input)
        blob = letterbox.apply(rgb).transpose(2, 0, 1)[None].astype(self.input_dtype) / self.input_dtype(255)
        (raw,) = self.session.run([self.output_name], {self.input_name: blob})
        boxes, scores = self._decode(raw[0].astype(np.float32), min_score)
        boxes = letterbox.invert(boxes)
        return np.clip(boxes, 0, [width, height, width, height]).astype(np.float32), scores

    def batch(self, images: list[np.ndarray], min_score: float) -> list[Found]:
        """One run per image: every image is letterboxed to the same input anyway."""
        return [self(rgb, min_score) for rgb in images]

    def run_once(self, options: ort.RunOptions) -> None:
        """One run on a blank input, with ``options`` (e.g. arena shrinkage)."""
        blob = np.zeros((1, 3, self.fixed_input, self.fixed_input), dtype=self.input_dtype)
        self.session.run([self.output_name], {self.input_name: blob}, options)

    def _decode(self, raw: np.ndarray, min_score: float) -> Found:
        if self.version == 8:
            anchors = raw.T  # (anchors, 4 + classes [+ coeffs])
            scores = anchors[:, 4 : 4 + self.num_classes].max(axis=1)
        else:
            anchors = raw
            scores = anchors[:, 4] * anchors[:, 5 : 5 + self.num_classes].max(axis=1)
        chosen = scores >= min_score
        cx, cy, w, h = anchors[chosen, :4].T
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        return boxes.reshape(-1, 4).astype(np.float32), scores[chosen].astype(np.float32)


def _family(version: int) -> Family:
    def build(session: ort.InferenceSession, num_classes: int) -> Yolo:
        return Yolo(session, version=version, num_classes=num_classes)

    return Family(f"yolov{version}", fixed_input=True, prepare=drop_extra_outputs, build=build)


for _version in (8, 5):  # each family carries its version: the output layout differs
    register(_family(_version))
