"""Threads sharing one session: concurrent calls on inputs of one shape run as one batch, each caller gets its
own rows back, never more than ``most`` images a run, and an error reaches every call of its batch. On a
real onnxruntime session; a slow wrapper only makes the calls overlap."""

from __future__ import annotations

import threading
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from pipeline.detect.shared_batches import SharedBatches


def doubling_session() -> ort.InferenceSession:
    """y = 2x and s = the sum of each row, on a free batch and a free row length."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"]), helper.make_node("ReduceSum", ["x"], ["s"], axes=[1], keepdims=1)],
        "doubling",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "n"]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, ["batch", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


class Slow:
    """A real session whose runs take a while, so that calls from other threads arrive during each one."""

    def __init__(self, session: ort.InferenceSession, seconds: float, fail_rows: int | None = None) -> None:
        self.session, self.seconds, self.fail_rows = session, seconds, fail_rows
        self.rows: list[int] = []

    def run(self, names, feeds, options=None):
        rows = len(next(iter(feeds.values())))
        self.rows.append(rows)
        time.sleep(self.seconds)
        if self.fail_rows is not None and rows >= self.fail_rows:
            raise RuntimeError("the device fell over")
        return self.session.run(names, feeds, options)

    def get_inputs(self):
        return self.session.get_inputs()


def together(calls: list) -> list:
    """Run the calls on threads started at once; their results (or errors) in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def one(slot: int) -> None:
        start.wait()
        try:
            results[slot] = calls[slot]()
        except Exception as error:  # noqa: BLE001 - compared by the test
            results[slot] = error

    threads = [threading.Thread(target=one, args=(slot,)) for slot in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a call never returned"
    return results


def test_concurrent_calls_share_runs_and_each_gets_its_own_rows() -> None:
    slow = Slow(doubling_session(), 0.2)
    shared = SharedBatches(slow, most=16)  # type: ignore[arg-type]
    inputs = [np.full((1 + slot % 2, 3), slot, np.float32) for slot in range(8)]
    results = together([lambda x=x: shared.run(["y", "s"], {"x": x}) for x in inputs])
    for x, (doubled, summed) in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(doubled, 2 * x)
        np.testing.assert_array_equal(summed, x.sum(axis=1, keepdims=True))
    assert shared.runs == len(slow.rows) < shared.calls == len(inputs)  # batched: fewer runs than calls
    assert sum(slow.rows) == sum(len(x) for x in inputs)


def test_a_run_takes_at_most_most_images_and_only_inputs_of_one_shape() -> None:
    slow = Slow(doubling_session(), 0.1)
    shared = SharedBatches(slow, most=3)  # type: ignore[arg-type]
    inputs = [np.full((1, 3 + slot % 2), slot, np.float32) for slot in range(10)]  # two row lengths
    results = together([lambda x=x: shared.run(["y"], {"x": x}) for x in inputs])
    for x, (doubled,) in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(doubled, 2 * x)
    assert max(slow.rows) <= 3


def test_a_call_alone_runs_at_once_as_it_came() -> None:
    shared = SharedBatches(doubling_session(), most=8)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (doubled,) = shared.run(["y"], {"x": x})
    np.testing.assert_array_equal(doubled, 2 * x)
    assert shared.runs == shared.calls == 1


def test_an_error_reaches_every_call_of_its_batch_and_the_next_calls_still_run() -> None:
    slow = Slow(doubling_session(), 0.2, fail_rows=2)  # a run of two rows or more fails
    shared = SharedBatches(slow, most=8)  # type: ignore[arg-type]
    inputs = [np.full((1, 3), slot, np.float32) for slot in range(6)]
    results = together([lambda x=x: shared.run(["y"], {"x": x}) for x in inputs])
    failed = [r for r in results if isinstance(r, RuntimeError)]
    assert failed and all(str(r) == "the device fell over" for r in failed)
    assert len(failed) == sum(rows for rows in slow.rows if rows >= 2)  # exactly the calls of failed runs
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(shared.run(["y"], {"x": x})[0], 2 * x)


def test_most_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SharedBatches(doubling_session(), most=0)
