"""The input's conversion inside the graph: networks take the picture's bytes, uint8 NHWC, as decoded.

Every detector wants planar floats (NCHW, float32 or float16, maybe scaled to [0, 1]). Done on the host,
that conversion costs a pass over the image in numpy before every call: on the GPU the float16 plate
input took 11-22 ms of host arithmetic per 640x640 call (numpy has no half-precision kernels) against a 3 ms
network, and the copy to the device was two to four times the bytes. Here the graph itself transposes,
casts and scales, so the host hands over the bytes and the execution provider does the rest where it
runs: on the GPU, the work moves to the device; on the CPU, the conversion runs in onnxruntime's kernels.

Applied last, after quantization and half-precision conversion, so neither sees a changed graph.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

SUFFIX = "_rgb8"  # the new input's name: the old one's, plus this


def take_rgb_bytes(model: onnx.ModelProto, divisor: float = 1.0) -> None:
    """Replace the graph's one NCHW float input by a uint8 NHWC input, converted in the graph: transposed to
    NCHW, cast to float32, divided by ``divisor`` (255 for networks trained on [0, 1]), and cast to the old
    input's element type. The old input's name becomes the conversion's output, so no node changes."""
    graph = model.graph
    weights = {weight.name for weight in graph.initializer}  # some exports also list their weights as inputs
    fed = [index for index, value in enumerate(graph.input) if value.name not in weights]
    if len(fed) != 1 or len(graph.input[fed[0]].type.tensor_type.shape.dim) != 4:
        raise ValueError("take_rgb_bytes: expected one 4-D input")
    old = graph.input[fed[0]]
    element = old.type.tensor_type.elem_type
    batch, channels, height, width = (_dim(d) for d in old.type.tensor_type.shape.dim)
    if channels != 3:
        raise ValueError(f"take_rgb_bytes: expected 3 channels, got {channels}")
    name = old.name
    rgb8 = helper.make_tensor_value_info(name + SUFFIX, TensorProto.UINT8, [batch, height, width, 3])

    nodes = [
        helper.make_node("Transpose", [rgb8.name], [name + "_planar8"], perm=[0, 3, 1, 2], name=name + "_transpose"),
        helper.make_node("Cast", [name + "_planar8"], [name + "_float"], to=TensorProto.FLOAT, name=name + "_cast"),
    ]
    current = name + "_float"
    if divisor != 1.0:
        graph.initializer.append(helper.make_tensor(name + "_divisor", TensorProto.FLOAT, [], [divisor]))
        nodes.append(helper.make_node("Div", [current, name + "_divisor"], [name + "_scaled"], name=name + "_scale"))
        current = name + "_scaled"
    nodes.append(helper.make_node(
        "Identity" if element == TensorProto.FLOAT else "Cast", [current], [name],
        name=name + "_as_input", **({} if element == TensorProto.FLOAT else {"to": element}),
    ))
    for node in reversed(nodes):
        graph.node.insert(0, node)
    graph.input[fed[0]].CopyFrom(rgb8)


def _dim(dim: onnx.TensorShapeProto.Dimension) -> int | str:
    return dim.dim_value if dim.HasField("dim_value") else dim.dim_param
