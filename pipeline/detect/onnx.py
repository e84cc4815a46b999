"""onnxruntime sessions: explicit providers, checksum pinning, no silent fallback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import onnxruntime as ort

from ..errors import ModelError
from ..models import sha256_of


def providers_for(device: str) -> list:
    """The execution providers for a device name: ``cpu``, ``cuda`` or ``cuda:K``.

    CUDA is asked for alone (plus CPU for the few ops CUDA lacks); if the CUDA provider is not
    available the load fails instead of quietly running on the CPU.
    """
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" or device.startswith("cuda:"):
        index = device.partition(":")[2] or "0"
        if not index.isdigit():
            raise ModelError(f"bad device {device!r}: expected cpu, cuda or cuda:N")
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ModelError(
                f"device {device!r} asked for, but this onnxruntime has no CUDAExecutionProvider "
                f"(available: {', '.join(ort.get_available_providers())}); install with ./install.sh --gpu"
            )
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    raise ModelError(f"bad device {device!r}: expected cpu, cuda or cuda:N")


def load_session(
    path: Path,
    *,
    device: str,
    threads: int,
    expected_sha256: str | None,
    prepare: Callable[[onnx.ModelProto], None] | None = None,
) -> tuple[ort.InferenceSession, str]:
    """Load, verify and (optionally) rewrite a model, then build its session. Returns (session, sha256)."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path} (run ./install.sh to fetch the default models)")
    digest = sha256_of(path)
    if expected_sha256 and digest != expected_sha256:
        raise ModelError(f"checksum mismatch for {path.name}: expected {expected_sha256}, got {digest}")
    try:
        model = onnx.load(str(path))
        if prepare is not None:
            prepare(model)
        payload = model.SerializeToString()
    except Exception as error:  # a corrupt protobuf raises a variety of errors
        raise ModelError(f"cannot read model {path.name}: {error}") from error

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(payload, sess_options=options, providers=providers_for(device))
    except ModelError:
        raise
    except Exception as error:
        raise ModelError(f"onnxruntime cannot load {path.name}: {error}") from error
    return session, digest


def make_spatial_dims_dynamic(model: onnx.ModelProto) -> None:
    """For fully convolutional graphs stored with a fixed input shape: free batch, height and width.

    Also drops initializers from the graph inputs, so onnxruntime may constant-fold them (a 2x speed-up
    for the CenterFace file, see MODELS.md).
    """
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    real_inputs = [value for value in graph.input if value.name not in initializers]
    del graph.input[:]
    graph.input.extend(real_inputs)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, label in ((0, "batch"), (2, "height"), (3, "width")):
            if len(dims) == 4:
                dims[index].ClearField("dim_value")
                dims[index].dim_param = f"{label}_{value.name}" if index else "batch"
    del graph.value_info[:]  # stale fixed shapes of intermediate tensors
