"""How sessions are built: onnxruntime's intra-op threads do not spin unless asked to (RuntimeParams.spin_wait)."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.detect.onnx import load_session
from pipeline.detect.runtime import RuntimeParams


@pytest.fixture
def identity_model(tmp_path):
    """A one-node graph: enough for onnxruntime to build a session from it."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize("spin_wait, expected", [(False, "0"), (True, "1")])
def test_intra_op_spinning_follows_the_setting(identity_model, spin_wait, expected):
    session, _ = load_session(identity_model, device="cpu", threads=2, expected_sha256=None, spin_wait=spin_wait)
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == expected


def test_the_shipped_runtime_does_not_spin():
    assert RuntimeParams().spin_wait is False
