"""One network's calls shared by the threads of several videos: concurrent calls on inputs of one shape run as
one batch.

Several videos masked on threads of one process (one engine, one set of sessions on the GPU) each call the
networks one frame or a few windows at a time, and a small call leaves most of a GPU idle: on an H200 a
640x640 plate window cost 6.4 ms alone and 2.4 ms in a batch of 4 (docs/benchmarks.md). Here, calls that
arrive while the network is busy wait, and the next run takes all of them that share the first one's input
shape, up to ``most`` images, concatenated along the batch axis; each caller gets its own rows back. Nothing
waits on purpose: a call that finds the network idle runs at once, alone. No batching is invented where there
is no concurrency.

The first waiting call leads: it runs the batch and hands out the results, then the next waiting call leads.
An error in a batched run is raised in every call of that batch.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort


@dataclass(eq=False)
class _Call:
    output_names: tuple[str, ...]
    name: str
    pixels: np.ndarray
    done: bool = False
    outputs: list[np.ndarray] = field(default_factory=list)
    error: BaseException | None = None

    def joins(self, first: "_Call") -> bool:
        return (self.output_names, self.name, self.pixels.shape[1:], self.pixels.dtype) == (
            first.output_names, first.name, first.pixels.shape[1:], first.pixels.dtype)


class SharedBatches:
    """Wraps a session (one input, outputs batch-first) for threads that share it; answers what the detector
    families call: ``run``, ``get_inputs``, ``get_outputs``, ``get_providers``."""

    def __init__(self, session: ort.InferenceSession, most: int) -> None:
        if most < 1:
            raise ValueError(f"most must be at least 1, got {most}")
        self._session = session
        self._most = most
        self._waiting: deque[_Call] = deque()
        self._running = False
        self._changed = threading.Condition()
        self.calls = 0  # for a benchmark: calls made, and the network runs they took (fewer when batched)
        self.runs = 0

    def get_inputs(self) -> list:
        return self._session.get_inputs()

    def get_outputs(self) -> list:
        return self._session.get_outputs()

    def get_providers(self) -> list[str]:
        return self._session.get_providers()

    def run(self, output_names: list[str], feeds: dict[str, np.ndarray], run_options: ort.RunOptions | None = None
            ) -> list[np.ndarray]:
        if run_options is not None or len(feeds) != 1:  # arena shrinkage and the like: a call of its own
            with self._changed:
                self.calls += 1
                self.runs += 1
            return self._session.run(output_names, feeds, run_options)
        ((name, pixels),) = feeds.items()
        call = _Call(tuple(output_names), name, pixels)
        with self._changed:
            self.calls += 1
            self._waiting.append(call)
            while not call.done:
                if self._running:
                    self._changed.wait()
                    continue
                batch = self._take()
                self._running = True
                self._changed.release()
                try:
                    self._run(batch)
                finally:
                    self._changed.acquire()
                    self._running = False
                    self.runs += 1
                    self._changed.notify_all()
        if call.error is not None:
            raise call.error
        return call.outputs

    def _take(self) -> list[_Call]:
        """The first waiting call and those waiting that share its input, up to ``most`` images in all."""
        first = self._waiting[0]
        batch: list[_Call] = []
        images = 0
        for call in list(self._waiting):
            if call.joins(first) and (not batch or images + len(call.pixels) <= self._most):
                batch.append(call)
                images += len(call.pixels)
                self._waiting.remove(call)
        return batch

    def _run(self, batch: list[_Call]) -> None:
        first = batch[0]
        pixels = first.pixels if len(batch) == 1 else np.concatenate([call.pixels for call in batch])
        try:
            outputs = self._session.run(list(first.output_names), {first.name: pixels})
        except BaseException as error:  # noqa: BLE001 - handed to every call of the batch
            for call in batch:
                call.error, call.done = error, True
            return
        start = 0
        for call in batch:
            end = start + len(call.pixels)
            call.outputs = [output[start:end] for output in outputs]
            call.done = True
            start = end
