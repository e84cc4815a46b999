"""Detector models by configuration: another YOLO export in place of a default, and refusals at load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pipeline.detect.catalogue import default_model_dir, sha256_of
from pipeline.detect.engine import Engine
from pipeline.detect.precision import exact_int8_kernels
from pipeline.detect.runtime import RuntimeParams
from pipeline.errors import ModelError
from pipeline.params import DetectorParams, ModelSpec
from pipeline.records import ObjectClass

from tests.conftest import eval_set


def test_a_configured_yolo_model_replaces_the_default_plate_model(tmp_path, engine):
    own = tmp_path / "my-plates.onnx"
    shutil.copy(default_model_dir() / "platedet.onnx", own)
    # A copy of the default file, pinned by its checksum (as `veil models activate` loads one): it runs as the
    # default does, in int8 on a CPU with VNNI, else in float32.
    spec = ModelSpec(name="my-plates", family="yolov8", path=own, classes=("license_plate",), sha256=sha256_of(own))
    custom = Engine.load(DetectorParams(classes=("license_plate",)).with_model(ObjectClass.LICENSE_PLATE, spec))
    (record,) = custom.model_records
    assert record.name == "my-plates" and record.family == "yolov8" and record.sha256 == spec.sha256
    assert record.precision == ("int8" if exact_int8_kernels() else "fp32")
    # A real photo with a labelled plate (ucsd_lp, 640x480): both find it, with the same boxes and scores.
    folder = eval_set("ucsd_lp")
    coco = json.loads((folder / "annotations.json").read_text())
    info = min(coco["images"], key=lambda i: i["file_name"])
    [plate] = [a["bbox"] for a in coco["annotations"] if a["image_id"] == info["id"] and a["category_id"] == 2]
    image = np.asarray(Image.open(folder / "images" / info["file_name"]).convert("RGB"))
    mine = custom.detect(image)
    default = engine.detect(image).of_class(ObjectClass.LICENSE_PLATE)
    assert len(mine) > 0 and len(default) > 0, "no plate found on a photo with a labelled plate"
    assert mine.boxes.shape == default.boxes.shape
    assert np.allclose(mine.boxes, default.boxes) and np.allclose(mine.scores, default.scores)
    x, y, w, h = plate
    confident = mine.boxes[mine.scores >= DetectorParams().thresholds(ObjectClass.LICENSE_PLATE).threshold]
    ix = np.clip(np.minimum(confident[:, 2], x + w) - np.maximum(confident[:, 0], x), 0, None)
    iy = np.clip(np.minimum(confident[:, 3], y + h) - np.maximum(confident[:, 1], y), 0, None)
    assert (ix * iy / (w * h)).max() >= 0.7, "the labelled plate is not covered by a confident detection"


@pytest.mark.parametrize(
    "spec, message",
    [
        # a face model declared as a YOLO export: its contract does not match
        (dict(name="wrong", family="yolov8", file="centerface.onnx", classes=("license_plate",)), "YOLO contract"),
        # a pinned checksum that does not match
        (dict(name="pinned", family="yolov8", file="platedet.onnx", classes=("license_plate",), sha256="0" * 64),
         "checksum mismatch"),
        # a model that does not declare the class it is asked for
        (dict(name="faces-only", family="centerface", file="centerface.onnx", classes=("face",)), "does not declare"),
    ],
)
def test_a_model_that_does_not_match_its_contract_refuses_to_load(tmp_path, spec, message):
    path = tmp_path / spec.pop("file")
    shutil.copy(default_model_dir() / path.name, path)
    model = ModelSpec(path=path, **spec)
    with pytest.raises(ModelError, match=message):
        Engine.load(DetectorParams(classes=("license_plate",)).with_model(ObjectClass.LICENSE_PLATE, model), RuntimeParams())


def test_cuda_without_the_cuda_provider_is_refused_not_silently_cpu():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    with pytest.raises(ModelError, match="no CUDAExecutionProvider"):
        Engine.load(DetectorParams(classes=("face",)), RuntimeParams(device="cuda:0"))
