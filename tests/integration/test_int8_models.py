"""The shipped plate model runs in 8-bit integers on the CPU and finds what the float model finds."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from pipeline.detect.catalogue import default_model_dir, find_source
from pipeline.detect.engine import Engine
from pipeline.detect.int8 import calibration_for, quantized
from pipeline.detect.yolo import drop_extra_outputs
from pipeline.errors import ModelError, QuantizationError
from pipeline.media.image import load_image
from pipeline.params import DetectorParams, ModelSpec, Params, RuntimeParams
from pipeline.records import ObjectClass

from tests.conftest import eval_set, require_models

PLATE = ObjectClass.LICENSE_PLATE


def test_every_default_model_set_to_int8_has_shipped_ranges_and_runs_in_int8(engine):
    detector = Params().detector
    names = [detector.for_class(c).model.name for c in ObjectClass]
    sources = [s for s in map(find_source, names) if s is not None and s.int8]
    assert [s.name for s in sources] == ["platedet"]
    for source in sources:
        assert calibration_for(source.sha256).is_file()
    assert {r.name: r.precision for r in engine.model_records} == {"centerface": "fp32", "platedet": "int8"}


def test_the_quantized_graph_has_integer_convolutions_and_float_predictions():
    require_models()
    source = find_source("platedet")
    assert source is not None
    model = onnx.load(str(default_model_dir() / source.file_name))
    drop_extra_outputs(model)
    graph = quantized(model, source.sha256).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 50
    # The class scores' head is not quantized: its Sigmoid reads a float convolution, not a DequantizeLinear.
    producers = {out: node for node in graph.node for out in node.output}
    [sigmoid] = [n for n in graph.node if n.name == "/model.22/Sigmoid"]
    assert producers[sigmoid.input[0]].op_type != "DequantizeLinear"


def test_int8_plates_match_the_float_model_on_real_photos(engine):
    """Every plate the float model finds at its threshold lies mostly inside a plate the int8 model finds
    (above the review floor), on real photos of two plate sets."""
    floats = Engine.load(DetectorParams(classes=("license_plate",)).with_model(
        PLATE, Params().detector.for_class(PLATE).model.model_copy(update={"int8": False})), RuntimeParams())
    thresholds = DetectorParams().thresholds(PLATE)
    compared = 0
    for name, step in (("ucsd_lp", 20), ("openalpr_endtoend", 45)):
        folder = eval_set(name)
        images = json.loads((folder / "annotations.json").read_text())["images"][::step]
        for info in images:
            rgb = load_image(folder / "images" / info["file_name"], 40_000_000).rgb
            reference = floats.detect(rgb)
            reference = reference[reference.scores >= thresholds.threshold]
            found = engine.detect(rgb).of_class(PLATE)
            if len(reference) == 0:
                continue
            assert len(found) > 0, f"{info['file_name']}: the int8 model found no plate"
            assert _covered(reference.boxes, found.boxes).min() >= 0.8, f"{info['file_name']}: a plate moved"
            compared += len(reference)
    assert compared >= 8


def _covered(boxes: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Per box, the largest share of its area inside one of ``by``."""
    width = np.minimum(boxes[:, None, 2], by[None, :, 2]) - np.maximum(boxes[:, None, 0], by[None, :, 0])
    height = np.minimum(boxes[:, None, 3], by[None, :, 3]) - np.maximum(boxes[:, None, 1], by[None, :, 1])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return (np.clip(width, 0, None) * np.clip(height, 0, None)).max(axis=1) / area


def test_int8_for_a_model_file_veil_has_not_calibrated_is_refused(tmp_path):
    require_models()
    model = onnx.load(str(default_model_dir() / "platedet.onnx"))
    model.metadata_props.add(key="retrained", value="by the site")  # another file: another checksum
    own = tmp_path / "own-plates.onnx"
    onnx.save(model, str(own))
    spec = ModelSpec(name="own-plates", family="yolov8", path=own, classes=("license_plate",), int8=True)
    with pytest.raises(ModelError, match="no calibration"):
        Engine.load(DetectorParams(classes=("license_plate",)).with_model(PLATE, spec), RuntimeParams())
    spec = spec.model_copy(update={"int8": None})  # unset: a file of the site's own runs in float32
    (record,) = Engine.load(DetectorParams(classes=("license_plate",)).with_model(PLATE, spec)).model_records
    assert record.precision == "fp32"


def test_an_onnxruntime_that_cannot_quantize_runs_the_default_in_float32_and_refuses_an_explicit_int8(monkeypatch):
    require_models()

    def cannot(model, digest):
        raise QuantizationError("this onnxruntime takes no cached calibration")

    monkeypatch.setattr("pipeline.detect.onnx.quantized", cannot)
    plates = DetectorParams(classes=("license_plate",))
    (record,) = Engine.load(plates, RuntimeParams()).model_records
    assert record.name == "platedet" and record.precision == "fp32"
    explicit = plates.for_class(PLATE).model.model_copy(update={"int8": True})
    with pytest.raises(QuantizationError, match="cached calibration"):
        Engine.load(plates.with_model(PLATE, explicit), RuntimeParams())
