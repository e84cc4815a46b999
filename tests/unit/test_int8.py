"""The int8 graph rewrite in parts: which nodes stay in float, the float16-to-float32 copy, missing ranges."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.detect.int8 import as_float32, decoder_nodes, name_nodes, prediction_nodes, stem_nodes
from pipeline.detect.precision import calibration_for, exact_int8_kernels
from pipeline.errors import ModelError


def _conv(name: str, source: str, target: str) -> object:
    return helper.make_node("Conv", [source, f"{name}.w"], [target], name=name)


def test_the_prediction_convolutions_and_their_decoding_stay_in_float():
    # body -> relu -> two heads: a score head (conv, sigmoid, output) and a box head whose output is decoded
    # through a one-channel projection (decoding, not a layer), plus a branch that crosses another
    # convolution before its output (its first node is quantized).
    weights = [numpy_helper.from_array(np.ones((channels, 4, 1, 1), dtype=np.float32), f"{name}.w")
               for name, channels in (("body", 4), ("score", 4), ("box", 4), ("fixed", 4), ("projection", 1))]
    nodes = [
        _conv("body", "x", "b"), helper.make_node("Relu", ["b"], ["r"], name="relu"),
        _conv("score", "r", "s"), helper.make_node("Sigmoid", ["s"], ["score_out"], name="sigmoid"),
        _conv("box", "r", "box_raw"),
        helper.make_node("Softmax", ["r"], ["p"], name="softmax"), _conv("fixed", "p", "fixed_out"),
        helper.make_node("Exp", ["box_raw"], ["e"], name="exp"), _conv("projection", "e", "projected"),
        helper.make_node("Reshape", ["projected", "shape"], ["projected_out"], name="reshape"),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
               for n in ("score_out", "fixed_out", "projected_out")]
    graph = helper.make_graph(nodes, "heads", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)], outputs,
                              weights)
    assert sorted(prediction_nodes(helper.make_model(graph))) == [
        "box", "exp", "fixed", "projection", "reshape", "score", "sigmoid"]


def test_the_decoder_is_everything_from_the_first_upsampling_on_and_the_lateral_branches_joining_it():
    # An encoder (e1 -> e2 -> e3), a decoder that upsamples e3 and adds a lateral (conv, relu) tapped from
    # e2, which e3 reads too: the tap stays in the encoder, the lateral branch joins the decoder.
    def node(op, inputs, output, name):
        return helper.make_node(op, inputs, [output], name=name)

    nodes = [
        _conv("e1", "x", "t1"), _conv("e2", "t1", "t2"), _conv("e3", "t2", "t3"),
        node("ConvTranspose", ["t3", "up.w"], "u", "up"), node("Relu", ["u"], "ur", "up_relu"),
        _conv("lateral", "t2", "l"), node("Relu", ["l"], "lr", "lateral_relu"),
        node("Add", ["ur", "lr"], "sum", "join"), _conv("head", "sum", "y"),
    ]
    graph = helper.make_graph(nodes, "fpn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    assert decoder_nodes(helper.make_model(graph)) == ["head", "join", "lateral", "lateral_relu", "up", "up_relu"]
    assert stem_nodes(helper.make_model(graph), 2) == ["e1", "e2"]  # the first convolutions in graph order
    encoder_only = helper.make_graph(nodes[:3], "plain", graph.input,
                                     [helper.make_tensor_value_info("t3", TensorProto.FLOAT, None)])
    assert decoder_nodes(helper.make_model(encoder_only)) == []


def test_a_float16_graph_is_copied_in_float32_and_the_original_is_left_alone():
    weight = numpy_helper.from_array(np.ones((1, 3), dtype=np.float16), "w")
    nodes = [helper.make_node("Add", ["x", "w"], ["a"]), helper.make_node("Cast", ["a"], ["y"], to=TensorProto.FLOAT16)]
    graph = helper.make_graph(nodes, "half", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 3])], [weight])
    model = helper.make_model(graph)
    copy = as_float32(model)
    assert copy.graph.initializer[0].data_type == TensorProto.FLOAT
    assert copy.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert copy.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert copy.graph.node[1].attribute[0].i == TensorProto.FLOAT
    assert model.graph.initializer[0].data_type == TensorProto.FLOAT16  # a copy: the caller's graph is unchanged
    name_nodes(copy)
    assert [n.name for n in copy.graph.node] == ["Add_0", "Cast_1"]


def test_a_model_without_shipped_ranges_is_refused():
    with pytest.raises(ModelError, match="no calibration"):
        calibration_for("0" * 64)


VNNI_EPYC = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n"
AVX2_EPYC = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 fma bmi2\n"
ALDER_LAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx_vnni\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd asimddp sve\n"


@pytest.mark.parametrize(("cpuinfo", "exact"), [
    (VNNI_EPYC, True), (ALDER_LAKE, True), (AVX2_EPYC, False), (GRAVITON, False), ("", False),
], ids=["avx512-vnni", "avx-vnni", "avx2-only", "arm", "unknown"])
def test_int8_runs_by_default_only_where_the_integer_kernels_are_exact(cpuinfo, exact):
    assert exact_int8_kernels(cpuinfo) is exact
