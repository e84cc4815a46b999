"""The shipped models run in 8-bit integers on a CPU whose integer kernels are exact (VNNI), in float32 on
any other, and in int8 find what the float models find."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from pipeline.detect.catalogue import default_model_dir, find_source
from pipeline.detect.engine import Engine
from pipeline.detect.families import family
from pipeline.detect.int8 import quantized
from pipeline.detect.onnx import load_session, make_spatial_dims_dynamic
from pipeline.detect.precision import calibration_for, exact_int8_kernels
from pipeline.detect.runtime import RuntimeParams
from pipeline.errors import ModelError, QuantizationError
from pipeline.eval.images import COVERED
from pipeline.mask import coverage, pixel_bounds, plan_regions
from pipeline.media.image import load_image
from pipeline.params import DetectorParams, ModelSpec, Params
from pipeline.records import ObjectClass

from tests.conftest import eval_set, require_models

PLATE = ObjectClass.LICENSE_PLATE
FACE = ObjectClass.FACE


def test_every_default_model_set_to_int8_has_shipped_ranges_and_runs_in_int8_where_the_cpu_allows(engine):
    detector = Params().detector
    names = [detector.for_class(c).model.name for c in ObjectClass]
    sources = [s for s in map(find_source, names) if s is not None and s.int8]
    assert [s.name for s in sources] == ["centerface", "platedet"]
    for source in sources:
        assert calibration_for(source.sha256).is_file()
    shipped = "int8" if exact_int8_kernels() else "fp32"
    assert {r.name: r.precision for r in engine.model_records} == {"centerface": shipped, "platedet": shipped}


@pytest.mark.parametrize("exact", [True, False], ids=["vnni", "no-vnni"])
def test_the_default_models_run_in_int8_only_on_a_cpu_with_exact_integer_kernels(monkeypatch, exact):
    """Without VNNI the integer kernels saturate and the face scores fall under the threshold, so the
    catalogue's int8 gives way to float32; a model a profile sets to int8 = true still runs in int8."""
    require_models()
    monkeypatch.setattr("pipeline.detect.engine.exact_int8_kernels", lambda: exact)
    records = {r.name: r.precision for r in Engine.load(DetectorParams()).model_records}
    precision = "int8" if exact else "fp32"
    assert records == {"centerface": precision, "platedet": precision}
    faces = DetectorParams(classes=("face",))
    explicit = faces.for_class(FACE).model.model_copy(update={"int8": True})
    (record,) = Engine.load(faces.with_model(FACE, explicit)).model_records
    assert record.precision == "int8"


def test_half_precision_asked_for_on_the_cpu_leaves_the_int8_models_as_they_are(monkeypatch):
    """``precision = "fp16"`` for CPU workers: the int8 graphs load and run (a half-precision rewrite of them
    did not load), and the sidecar says what ran."""
    require_models()
    monkeypatch.setattr("pipeline.detect.engine.exact_int8_kernels", lambda: True)
    engine = Engine.load(DetectorParams(), RuntimeParams(precision="fp16"))
    assert {r.name: r.precision for r in engine.model_records} == {"centerface": "int8", "platedet": "int8"}
    assert len(engine.detect(np.zeros((64, 64, 3), dtype=np.uint8))) == 0


def test_the_quantized_graph_has_integer_convolutions_and_float_predictions():
    require_models()
    source = find_source("platedet")
    assert source is not None
    model = onnx.load(str(default_model_dir() / source.file_name))
    family(source.family).prepare(model)
    graph = quantized(model, source.sha256).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 50
    # The class scores' head is not quantized: its Sigmoid reads a float convolution, not a DequantizeLinear.
    producers = {out: node for node in graph.node for out in node.output}
    [sigmoid] = [n for n in graph.node if n.name == "/model.22/Sigmoid"]
    assert producers[sigmoid.input[0]].op_type != "DequantizeLinear"


def test_a_process_reads_the_session_graph_an_earlier_one_rewrote_and_other_ranges_rewrite_it(tmp_path, monkeypatch):
    require_models()
    source = find_source("platedet")
    assert source is not None
    kind = family(source.family)

    def load():
        return load_session(default_model_dir() / source.file_name, device="cpu", threads=1,
                            expected_sha256=source.sha256, prepare=kind.prepare, int8=True,
                            input_divisor=kind.input_divisor)[0]

    monkeypatch.setenv("CACHE_DIRECTORY", str(tmp_path))
    monkeypatch.setattr("pipeline.detect.int8._QUANTIZED", {})  # a process that has quantized nothing yet
    first = load()
    assert len(list((tmp_path / "graphs").glob("*.onnx"))) == 1

    def rewrite_again(*args, **kwargs):
        raise RuntimeError("rewritten again")

    monkeypatch.setattr("pipeline.detect.int8._QUANTIZED", {})  # the next process
    monkeypatch.setattr("pipeline.detect.onnx._rewritten", rewrite_again)
    second = load()
    pixels = np.random.default_rng(0).integers(0, 256, (1, 640, 640, 3), dtype=np.uint8)
    (name,) = [i.name for i in first.get_inputs()]
    np.testing.assert_array_equal(first.run(None, {name: pixels})[0], second.run(None, {name: pixels})[0])
    ranges = json.loads(calibration_for(source.sha256).read_text())
    next(iter(ranges["data"].values()))["highest"]["data"][0] *= 2  # recalibrated
    (tmp_path / "ranges.json").write_text(json.dumps(ranges))
    monkeypatch.setattr("pipeline.detect.onnx.calibration_for", lambda digest: tmp_path / "ranges.json")
    with pytest.raises(RuntimeError, match="rewritten again"):
        load()


def test_a_process_whose_graphs_are_kept_loads_the_shipped_engine_without_the_onnx_library(tmp_path):
    probe = ("import sys; from pipeline.detect.engine import Engine; from pipeline.params import Params; "
             "engine = Engine.load(Params().detector); "
             "print(*(r.precision for r in engine.model_records), 'onnx' in sys.modules)")
    env = {**os.environ, "CACHE_DIRECTORY": str(tmp_path)}
    first, second = (subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True,
                                    text=True).stdout.split() for _ in range(2))
    shipped = "int8" if exact_int8_kernels() else "fp32"
    assert first == [shipped, shipped, "True"]  # the first rewrites the graphs, with the onnx library
    assert second == [shipped, shipped, "False"]


def test_the_face_model_keeps_its_stem_and_decoder_in_float():
    require_models()
    source = find_source("centerface")
    assert source is not None and source.int8_float_decoder and source.int8_float_stem == 6
    model = onnx.load(str(default_model_dir() / source.file_name))
    make_spatial_dims_dynamic(model)
    graph = quantized(model, source.sha256).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") > 50  # the encoder runs in integers
    producers = {out: node for node in graph.node for out in node.output}
    upsampling = [n for n in graph.node if n.op_type == "ConvTranspose"]
    sums = [n for n in graph.node if n.op_type == "Add" and any(producers.get(i) in upsampling for i in n.input)]
    assert len(upsampling) == 3 and upsampling[0].input[1] in {w.name for w in graph.initializer}  # float weights
    # The decoder's sums read float tensors on both inputs (a quantized input shifted the face scores).
    for node in sums:
        assert {producers[i].op_type for i in node.input} <= {"ConvTranspose", "Relu"}, node.name
    # The stem reads the pixels themselves, not a DequantizeLinear of them.
    first = next(n for n in graph.node if n.op_type == "Conv")
    assert first.input[0] == graph.input[0].name


@pytest.mark.parametrize(("object_class", "sets"), [
    (PLATE, (("ucsd_lp", 20), ("openalpr_endtoend", 45))),
    (FACE, (("rbnr_faces", 12), ("dlib_faces_voc", 2), ("cmu_mit_faces", 12))),
], ids=["plates", "faces"])
def test_int8_finds_what_the_float_model_finds_on_real_photos(engine, object_class, sets):
    """Every object the float model finds at its threshold is masked (90% of its box, as ``veil eval``
    counts a labelled box) by the masks the shipped engine plans from its int8 detections, every class at
    once, on real photos. Only where the shipped engine runs int8: on a CPU without VNNI it runs float32
    (the test above), and int8 there loses faces by design of the kernels, not of Veil."""
    if not exact_int8_kernels():
        assert {r.precision for r in engine.model_records} == {"fp32"}
        pytest.skip("this CPU has no VNNI: the shipped engine runs float32, so there is no int8 to compare")
    floats = Engine.load(DetectorParams(classes=(object_class.label,)).with_model(
        object_class, Params().detector.for_class(object_class).model.model_copy(update={"int8": False})),
        RuntimeParams())
    params = Params()
    thresholds = params.detector.thresholds(object_class)
    compared = 0
    for name, step in sets:
        folder = eval_set(name)
        images = json.loads((folder / "annotations.json").read_text())["images"][::step]
        for info in images:
            rgb = load_image(folder / "images" / info["file_name"], 40_000_000).rgb
            reference = floats.detect(rgb)
            reference = reference[reference.scores >= thresholds.threshold]
            if len(reference) == 0:
                continue
            covered = coverage(rgb.shape, plan_regions(engine.detect(rgb), params, rgb.shape), params.mask)
            for box in reference.boxes:
                x0, y0, x1, y1 = pixel_bounds(box, rgb.shape)
                assert covered[y0:y1, x0:x1].mean() >= COVERED, f"{info['file_name']}: {box} is not masked"
            compared += len(reference)
    assert compared >= 8


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


def test_an_onnxruntime_that_cannot_quantize_runs_the_default_in_float32_and_refuses_an_explicit_int8(monkeypatch,
                                                                                                     tmp_path):
    require_models()

    def cannot(model, digest):
        raise QuantizationError("this onnxruntime takes no cached calibration")

    monkeypatch.setenv("CACHE_DIRECTORY", str(tmp_path))  # no graph kept: this onnxruntime must rewrite it
    monkeypatch.setattr("pipeline.detect.int8.quantized", cannot)
    plates = DetectorParams(classes=("license_plate",))
    (record,) = Engine.load(plates, RuntimeParams()).model_records
    assert record.name == "platedet" and record.precision == "fp32"
    explicit = plates.for_class(PLATE).model.model_copy(update={"int8": True})
    with pytest.raises(QuantizationError, match="cached calibration"):
        Engine.load(plates.with_model(PLATE, explicit), RuntimeParams())
