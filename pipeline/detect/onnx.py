"""onnxruntime sessions: explicit providers, checksum pinning, no silent fallback.

The graph a session gets is the model file rewritten (the family's edits, int8 or fp16, the uint8 input). It is
kept on disk (``graph_cache``), so a process whose graph is kept reads it whole and never imports the onnx
library (about 0.9 s a start here, its ml_dtypes above all) nor quantizes (about 3.3 s for the two default
models).
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import onnxruntime as ort

from pipeline.detect.catalogue import sha256_of
from pipeline.detect.graph_cache import cached, key_of
from pipeline.detect.precision import calibration_for
from pipeline.errors import ModelError

if TYPE_CHECKING:
    import onnx

_REWRITING_CODE = Path(__file__).parent  # every module of pipeline.detect: the rewrites and what they call


def providers_for(device: str, *, dynamic_input: bool = False) -> list:
    """The execution providers for a device name: ``cpu``, ``cuda`` or ``cuda:K``.

    CUDA is asked for alone (plus CPU for the few ops CUDA lacks); if the CUDA provider is not
    available the load fails instead of quietly running on the CPU. A model fed many input sizes (crops
    for re-detection) uses cuDNN's heuristic algorithm choice: the exhaustive search reruns for every
    new size.
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
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # the CUDA and cuDNN libraries of the nvidia-* wheels installed with onnxruntime-gpu
        options = {"device_id": int(index), "cudnn_conv_algo_search": "HEURISTIC" if dynamic_input else "EXHAUSTIVE"}
        return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    raise ModelError(f"bad device {device!r}: expected cpu, cuda or cuda:N")


def load_session(
    path: Path,
    *,
    device: str,
    threads: int,
    expected_sha256: str | None,
    prepare: Callable[[onnx.ModelProto], None] | None = None,
    dynamic_input: bool = False,
    fp16: bool = False,
    int8: bool = False,
    spin_wait: bool = False,
    input_divisor: float | None = None,
) -> tuple[ort.InferenceSession, str]:
    """Load, verify and (optionally) rewrite a model, then build its session. Returns (session, sha256).

    ``dynamic_input``: the model is fed many input sizes. ``fp16``: run in half precision (GPU), inputs and
    outputs kept in float32. ``int8``: quantize to 8-bit integers with the ranges Veil ships for this file
    (CPU, ``pipeline.detect.int8``). ``spin_wait``: let the intra-op threads spin while idle (``RuntimeParams``).
    ``input_divisor``: the graph takes uint8 NHWC pixels and converts them itself, dividing by this
    (``pipeline.detect.frontend``); None keeps the stored input.
    """
    if not path.is_file():
        raise ModelError(f"model file not found: {path} (run ./install.sh to fetch the default models)")
    digest = sha256_of(path)
    if expected_sha256 and digest != expected_sha256:
        raise ModelError(f"checksum mismatch for {path.name}: expected {expected_sha256}, got {digest}")
    key = _graph_key(digest, prepare, int8=int8, fp16=fp16, input_divisor=input_divisor)
    payload = cached(key, lambda: _rewritten(path, digest, prepare, int8=int8, fp16=fp16, input_divisor=input_divisor))

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # these graphs are one chain: parallelism is inside the operators
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
    options.log_severity_level = 3
    # The memory pattern plans allocations for one input shape; with many shapes it only adds planning.
    options.enable_mem_pattern = not dynamic_input
    try:
        session = ort.InferenceSession(
            payload, sess_options=options, providers=providers_for(device, dynamic_input=dynamic_input)
        )
    except ModelError:
        raise
    except Exception as error:
        raise ModelError(f"onnxruntime cannot load {path.name}: {error}") from error
    return session, digest


def _graph_key(
    digest: str, prepare: Callable[[onnx.ModelProto], None] | None, *, int8: bool, fp16: bool,
    input_divisor: float | None,
) -> str:
    """Everything the session's graph depends on: the model file, the rewrites asked for (``prepare`` is a
    module-level function, named by its module and name), the shipped ranges where int8 runs (none: a
    QuantizationError, as without a kept graph), the code of ``pipeline.detect`` and the libraries' versions."""
    ranges = calibration_for(digest).read_bytes() if int8 else b""
    rewrite = f"{prepare.__module__}.{prepare.__qualname__}" if prepare is not None else ""
    return key_of("session-graph", digest, rewrite, repr((int8, fp16, input_divisor)), ranges, *_rewriting_code())


@functools.cache
def _rewriting_code() -> tuple[bytes | str, ...]:
    """The source of every ``pipeline.detect`` module and the onnx and onnxruntime versions: read once a process,
    however many sessions it loads."""
    code = [module.read_bytes() for module in sorted(_REWRITING_CODE.glob("*.py"))]
    return (*code, *(importlib.metadata.version(name) for name in ("onnx", "onnxruntime")))


def _rewritten(
    path: Path, digest: str, prepare: Callable[[onnx.ModelProto], None] | None, *, int8: bool, fp16: bool,
    input_divisor: float | None,
) -> bytes:
    """The model file as the session gets it: the family's rewrite, then int8 or fp16, then the uint8 input."""
    import onnx  # only where no graph is kept (the module's text)

    from pipeline.detect.frontend import take_rgb_bytes
    from pipeline.detect.int8 import quantized

    try:
        model = onnx.load(str(path))
        if prepare is not None:
            prepare(model)
        if int8:
            model = quantized(model, digest)
        if fp16:
            from onnxruntime.transformers.float16 import convert_float_to_float16

            model = convert_float_to_float16(model, keep_io_types=True)
        if input_divisor is not None:
            take_rgb_bytes(model, input_divisor)
        return model.SerializeToString()
    except ModelError:
        raise
    except Exception as error:  # a corrupt protobuf raises a variety of errors
        raise ModelError(f"cannot read model {path.name}: {error}") from error


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
