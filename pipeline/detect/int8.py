"""8-bit integer inference on the CPU: a default model quantized at load time from ranges Veil ships.

Static quantization needs the range of every activation, measured by running the model over calibration
images. Veil measures them once, on its development sets (``tools/calibrate_int8.py``), and ships only the
ranges, one JSON file per model file's checksum in ``calibration/``; no image and no weight is shipped.
At load time the float graph is rewritten into onnxruntime's QDQ form with those ranges, weights per
channel: on a CPU with VNNI the convolutions then run on 8-bit integers.

The prediction convolutions and the decoding after them stay in float (``prediction_nodes``): their
outputs mix quantities of different ranges (platedet concatenates box offsets in pixels with class
logits, so one 8-bit scale would round every score to zero). A model whose catalogue entry says so keeps
more in float: its upsampling decoder (``decoder_nodes``: CenterFace's scores at labelled faces fell by 0.10
at the median where the decoder's sums were quantized, 0.01 with them in float) and its stem
(``stem_nodes``: faces cut by the frame's edge kept their scores only with the first convolutions in
float). CenterFace so runs 1.6 times as fast as in float32 (docs/models.md#int8-on-the-cpu).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from pipeline.detect.catalogue import find_file
from pipeline.detect.precision import calibration_for
from pipeline.errors import QuantizationError

QDQ_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear need opset 13
_CONVOLUTIONS = frozenset({"Conv", "ConvTranspose"})
_QUANTIZED: dict[tuple[str, str], bytes] = {}  # (file's sha256, prepared graph's sha256) -> int8 graph


def quantized(model: onnx.ModelProto, digest: str) -> onnx.ModelProto:
    """``model`` (already prepared by its family) as an int8 QDQ graph, with the shipped ranges. Quantizing
    takes seconds, so each graph is quantized once per process (the tests and ``veil eval`` load often); the
    session's graph is kept on disk for the next process (``onnx.load_session``)."""
    key = (digest, hashlib.sha256(model.SerializeToString()).hexdigest())
    if key not in _QUANTIZED:
        source = find_file(digest)
        float_parts = (source.int8_float_decoder, source.int8_float_stem) if source else (False, 0)
        _QUANTIZED[key] = _quantize(model, calibration_for(digest), *float_parts).SerializeToString()
    result = onnx.ModelProto()
    result.ParseFromString(_QUANTIZED[key])
    return result


def _quantize(model: onnx.ModelProto, ranges: Path, keep_decoder: bool, keep_stem: int) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    try:
        with float_graph(model) as source, tempfile.TemporaryDirectory(prefix="veil-int8-") as folder:
            target = Path(folder) / "int8.onnx"
            graph = onnx.load(str(source))
            kept = prediction_nodes(graph) + (decoder_nodes(graph) if keep_decoder else []) + stem_nodes(graph, keep_stem)
            quantize_static(
                str(source), str(target), None, quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=ranges,
                nodes_to_exclude=sorted(set(kept)),
            )
            return onnx.load(str(target))
    except Exception as error:  # an onnxruntime before 1.32 (no cached calibration), or ranges of another graph
        raise QuantizationError(f"cannot quantize the model to int8 with {ranges.name}: {error}") from error


@contextmanager
def float_graph(model: onnx.ModelProto) -> Iterator[Path]:
    """The graph both calibration and quantization start from, saved to a temporary file: float32 weights,
    opset 13, every node named, and onnxruntime's pre-processing (shape inference, constant folding). The
    ranges are keyed by tensor names, so calibration and load time must build exactly this graph."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    graph = as_float32(model)
    _drop_unused_weights(graph)
    if max(entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")) < QDQ_OPSET:
        graph = onnx.version_converter.convert_version(graph, QDQ_OPSET)
    name_nodes(graph)
    with tempfile.TemporaryDirectory(prefix="veil-int8-") as folder:
        raw, ready = Path(folder) / "float.onnx", Path(folder) / "ready.onnx"
        onnx.save(graph, str(raw))
        quant_pre_process(str(raw), str(ready), skip_symbolic_shape=True)
        yield ready


def _drop_unused_weights(model: onnx.ModelProto) -> None:
    """Remove initializers no node reads (CenterFace carries its batch-norm counters), which onnxruntime
    would otherwise warn about, one line each, whenever the graph is quantized."""
    used = {name for node in model.graph.node for name in node.input}
    used |= {value.name for value in list(model.graph.output) + list(model.graph.input)}
    kept = [weight for weight in model.graph.initializer if weight.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def as_float32(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with every float16 weight, constant, cast and graph input or output in float32 (platedet is
    stored in half precision, which the integer kernels do not take)."""
    graph_model = onnx.ModelProto()
    graph_model.CopyFrom(model)
    graph = graph_model.graph
    for index, weight in enumerate(graph.initializer):
        if weight.data_type == TensorProto.FLOAT16:
            graph.initializer[index].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(weight).astype(np.float32), weight.name))
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                attribute.i = TensorProto.FLOAT
            if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT16:
                attribute.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attribute.t).astype(np.float32)))
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    del graph.value_info[:]  # stale element types; pre-processing infers them again
    return graph_model


def name_nodes(model: onnx.ModelProto) -> None:
    """Name the unnamed nodes (CenterFace's have none), so they can be excluded from quantization by name."""
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"


def prediction_nodes(model: onnx.ModelProto) -> list[str]:
    """The nodes with a path to a graph output that crosses no layer after them: the last convolution of
    each head and everything that decodes its output. A convolution with one output channel is a projection,
    not a layer (YOLOv8 decodes its box sides as the expectation of a softmax that way: quantized, the boxes
    moved 0.6 px at the median instead of 0.2)."""
    weights = {weight.name: weight for weight in model.graph.initializer}

    def is_layer(node: onnx.NodeProto) -> bool:
        if node.op_type not in _CONVOLUTIONS:
            return False
        weight = weights.get(node.input[1]) if len(node.input) > 1 else None
        return weight is None or weight.dims[0] != 1

    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {value.name for value in model.graph.output}
    reaches: dict[str, bool] = {}

    def reaches_output(node: onnx.NodeProto) -> bool:
        if node.name not in reaches:
            reaches[node.name] = False  # a cycle (there is none in an ONNX graph) ends here
            reaches[node.name] = any(
                name in outputs or any(
                    not is_layer(c) and reaches_output(c) for c in consumers.get(name, ()))
                for name in node.output
            )
        return reaches[node.name]

    return [node.name for node in model.graph.node if reaches_output(node)]


def stem_nodes(model: onnx.ModelProto, convolutions: int) -> list[str]:
    """The first ``convolutions`` convolutions, in graph order: the stem, which reads the pixels at full and
    half resolution, where 8-bit steps cost the most detail."""
    return [node.name for node in model.graph.node if node.op_type in _CONVOLUTIONS][:convolutions]


_UPSAMPLING = frozenset({"ConvTranspose", "Resize", "Upsample"})
_JOINS = frozenset({"Add", "Sum", "Concat"})


def decoder_nodes(model: onnx.ModelProto) -> list[str]:
    """An encoder-decoder's decoder: every node downstream of the first upsampling node, and the lateral
    branches that join it (the chains of nodes that feed only the decoder's sums, back to the encoder tensor
    they tap). A sum quantized on either input was what shifted CenterFace's scores; both must stay float."""
    nodes = list(model.graph.node)
    first = next((node for node in nodes if node.op_type in _UPSAMPLING), None)
    if first is None:
        return []
    decoder, tensors = {first.name}, set(first.output)
    for node in nodes:  # ONNX nodes are in topological order: one pass finds everything downstream
        if node.name not in decoder and any(name in tensors for name in node.input):
            decoder.add(node.name)
            tensors.update(node.output)
    producer = {name: node for node in nodes for name in node.output}
    consumers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    laterals: set[str] = set()
    for node in nodes:
        if node.name not in decoder or node.op_type not in _JOINS:
            continue
        for name in node.input:
            branch = producer.get(name)
            while branch is not None and branch.name not in decoder and branch.name not in laterals:
                laterals.add(branch.name)
                tapped = branch.input[0]
                if consumers.get(tapped, 0) != 1:  # an encoder tensor other layers read too: the tap
                    break
                branch = producer.get(tapped)
    return sorted(decoder | laterals)
