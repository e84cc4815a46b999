"""Does an ONNX file keep the contract it is registered with? Checked with the pipeline's own loader.

The file is loaded exactly as a worker would load it (``Engine.load``: checksum, graph preparation,
onnxruntime session, the family's I/O checks), run once on a blank image, and a fixed-input family's
declared input size is compared with the file's.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from pipeline.detect.catalogue import sha256_of
from pipeline.detect.engine import Engine
from pipeline.detect.families import family as family_named
from pipeline.errors import ModelError
from pipeline.params import DetectorParams, ModelSpec
from pipeline.detect.runtime import RuntimeParams
from pipeline.records import ObjectClass


def check_contract(path: Path, *, name: str, family: str, classes: tuple[str, ...], input_size: int | None,
                   runtime: RuntimeParams = RuntimeParams()) -> int | None:
    """Raise ModelError unless ``path`` loads and runs as a ``family`` detector of ``classes``.

    Returns the input size to record: the file's own for a fixed-input family, None for one that takes
    any size (CenterFace).
    """
    if not classes:
        raise ModelError("a model must declare at least one class (face, license_plate)")
    fixed_input = family_named(family).fixed_input
    if not fixed_input and input_size is not None:
        raise ModelError(f"{family} models are fully convolutional: they take no --input-size")
    side = _fixed_input_side(path) if fixed_input else None
    if input_size is not None and side != input_size:
        raise ModelError(f"declared input size {input_size}, but {path.name} takes {side}x{side}")
    spec = ModelSpec(name=name, family=family, path=path, classes=classes, input_size=side,
                     sha256=sha256_of(path))
    for task in classes:
        detector = DetectorParams(classes=(task,)).with_model(ObjectClass.from_label(task), spec)
        engine = Engine.load(detector, runtime)
        engine.warm_up()  # a graph that loads but fails on real input is refused here, not on the first file
    return side


def _fixed_input_side(path: Path) -> int | None:
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as error:  # a corrupt protobuf raises a variety of errors
        raise ModelError(f"cannot read model {path.name}: {error}") from error
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"YOLO contract: one input, {path.name} has {len(inputs)}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[2] is None or dims[2] != dims[3]:
        raise ModelError(f"YOLO contract: a fixed square NCHW input, {path.name} has {dims}")
    return dims[2]
