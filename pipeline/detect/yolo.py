"""YOLOv5/v8-style detectors (boxes, segmentation heads ignored): letterbox in, decode out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import onnxruntime as ort

from pipeline.detect.base import Family, Found, register
from pipeline.errors import ModelError

if TYPE_CHECKING:
    import onnx

PAD_VALUE = 114


def drop_extra_outputs(model: onnx.ModelProto) -> None:
    """Keep only the detection output: the mask-prototype branch of a -seg export is dead weight here."""
    first = model.graph.output[0]
    del model.graph.output[1:]
    model.graph.output[0].CopyFrom(first)


def free_batch(model: onnx.ModelProto) -> None:
    """Let the graph take a batch of images. Exports fix the batch at 1, in the input and output shapes and
    as a literal 1 leading the shape of every Reshape in the head (``[1, 32, -1]``, ``[1, 4, 16, 8400]``);
    a leading 0 copies the input's batch instead. The batch is the first dimension throughout."""
    from onnx import numpy_helper  # rewrites run only where no graph is kept (pipeline.detect.onnx)

    graph = model.graph
    for value in (graph.input[0], graph.output[0]):
        first = value.type.tensor_type.shape.dim[0]
        first.ClearField("dim_value")
        first.dim_param = "batch"
    shapes = {node.input[1] for node in graph.node if node.op_type == "Reshape"}
    for index, weight in enumerate(graph.initializer):
        if weight.name in shapes:
            shape = numpy_helper.to_array(weight).copy()
            if shape.size and shape[0] == 1:
                shape[0] = 0
                graph.initializer[index].CopyFrom(numpy_helper.from_array(shape, weight.name))
    del graph.value_info[:]  # stale batch-1 shapes of intermediate tensors


def prepare(model: onnx.ModelProto) -> None:
    drop_extra_outputs(model)
    free_batch(model)


class Letterbox:
    """Resize keeping the aspect ratio, pad to a square; and the inverse mapping for boxes."""

    def __init__(self, height: int, width: int, size: int):
        self.ratio = min(size / height, size / width)
        self.new_w, self.new_h = max(1, round(width * self.ratio)), max(1, round(height * self.ratio))
        self.pad_x, self.pad_y = (size - self.new_w) / 2, (size - self.new_h) / 2
        self.size = size

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.shape[:2] == (self.size, self.size):  # a packed canvas (mosaic.py): already the input
            return rgb
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
    """A fixed-input ``Detector``. ``version`` 8: output (batch, 4 + classes [+ mask coeffs], anchors);
    5: (batch, anchors, 5 + classes). Its input is uint8 NHWC, letterboxed (pipeline/detect/frontend.py)."""

    fixed_input: int

    def __init__(self, session: ort.InferenceSession, *, version: int, num_classes: int):
        inputs = session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError("YOLO contract: one NCHW input")
        height, width = inputs[0].shape[1:3]
        if not (isinstance(height, int) and height == width):
            raise ModelError(f"YOLO contract: a fixed square input, got {inputs[0].shape}")
        self.session = session
        self.version = version
        self.num_classes = num_classes
        self.fixed_input = height
        self.input_name = inputs[0].name
        self.output_name = session.get_outputs()[0].name
        rank_ok = len(session.get_outputs()[0].shape) == 3
        if not rank_ok:
            raise ModelError(f"YOLO contract: a 3-D detection output, got {session.get_outputs()[0].shape}")

    def __call__(self, rgb: np.ndarray, min_score: float) -> Found:
        return self.batch([rgb], min_score)[0]

    def batch(self, images: list[np.ndarray], min_score: float) -> list[Found]:
        """Images of any sizes in one run: each is letterboxed to the input on its own."""
        letterboxes = [Letterbox(rgb.shape[0], rgb.shape[1], self.fixed_input) for rgb in images]
        blob = np.stack([letterbox.apply(rgb) for letterbox, rgb in zip(letterboxes, images)])
        (raw,) = self.session.run([self.output_name], {self.input_name: blob})
        found = []
        for letterbox, rgb, one in zip(letterboxes, images, raw):
            height, width = rgb.shape[:2]
            boxes, scores = self._decode(one.astype(np.float32), min_score)
            boxes = np.clip(letterbox.invert(boxes), 0, [width, height, width, height]).astype(np.float32)
            found.append((boxes, scores))
        return found

    def run_once(self, options: ort.RunOptions) -> None:
        """One run on a blank input, with ``options`` (e.g. arena shrinkage)."""
        blob = np.zeros((1, self.fixed_input, self.fixed_input, 3), dtype=np.uint8)
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

    return Family(f"yolov{version}", fixed_input=True, prepare=prepare, input_divisor=255.0, build=build)


for _version in (8, 5):  # each family carries its version: the output layout differs
    register(_family(_version))
