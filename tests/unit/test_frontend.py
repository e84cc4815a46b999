"""The graph converts the pixels itself (pipeline/detect/frontend.py): uint8 NHWC in, the network's own input
out, exactly as the host conversion it replaces."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from pipeline.detect.frontend import SUFFIX, take_rgb_bytes


def _echo(element: int, channels: int = 3) -> onnx.ModelProto:
    """A graph whose output is its NCHW input, so the conversion in front of it can be read back."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "echo",
        [helper.make_tensor_value_info("x", element, ["n", channels, "h", "w"])],
        [helper.make_tensor_value_info("y", element, ["n", channels, "h", "w"])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, pixels: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    [feed] = session.get_inputs()
    assert feed.name == "x" + SUFFIX and feed.type == "tensor(uint8)" and feed.shape[3] == 3
    return session.run(None, {feed.name: pixels})[0]


@pytest.fixture
def pixels():
    return np.random.default_rng(1).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)


def test_a_float32_network_gets_planar_pixels_divided_as_the_host_did(pixels):
    model = _echo(TensorProto.FLOAT)
    take_rgb_bytes(model, 255.0)
    host = pixels.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    out = _run(model, pixels)
    assert out.dtype == np.float32 and out.shape == (2, 3, 5, 7)
    np.testing.assert_array_equal(out, host)


def test_without_a_divisor_the_network_gets_the_byte_values(pixels):
    model = _echo(TensorProto.FLOAT)
    take_rgb_bytes(model)
    np.testing.assert_array_equal(_run(model, pixels), pixels.transpose(0, 3, 1, 2).astype(np.float32))


def test_a_half_precision_network_gets_half_precision_values(pixels):
    model = _echo(TensorProto.FLOAT16)
    take_rgb_bytes(model, 255.0)
    out = _run(model, pixels)
    assert out.dtype == np.float16
    host = (pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255).astype(np.float16)
    np.testing.assert_array_equal(out, host)


def test_weights_listed_as_inputs_stay_and_only_the_image_input_is_replaced(pixels):
    model = _echo(TensorProto.FLOAT)
    model.graph.initializer.append(helper.make_tensor("counter", TensorProto.INT64, [], [0]))
    model.graph.input.append(helper.make_tensor_value_info("counter", TensorProto.INT64, []))
    take_rgb_bytes(model)
    assert [value.name for value in model.graph.input] == ["x" + SUFFIX, "counter"]
    np.testing.assert_array_equal(_run(model, pixels), pixels.transpose(0, 3, 1, 2).astype(np.float32))


def test_only_three_channel_4d_inputs_are_converted():
    with pytest.raises(ValueError, match="3 channels"):
        take_rgb_bytes(_echo(TensorProto.FLOAT, channels=1))
