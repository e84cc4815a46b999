"""Bounded queues between pipeline threads, and threads whose failure stops the others.

Decoding, detection and encoding run on their own threads (PyAV, onnxruntime and OpenCV release the GIL),
handing frames over through small bounded queues, so memory stays a few frames whatever the video's length.
When any thread fails, every other one stops at its next hand-off instead of waiting forever, and the first
error is raised in the thread that joins them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_POLL_S = 0.1  # how often a blocked hand-off looks whether another thread has failed


class Aborted(Exception):
    """Raised in a thread whose partner failed: it stops quietly, the partner's error is the one reported."""


class Crew:
    """The threads of one transcode and the shared abort flag."""

    def __init__(self) -> None:
        self.abort = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def queue(self, size: int) -> "Handoff":
        return Handoff(size, self.abort)

    def slots(self, count: int) -> "Slots":
        return Slots(count, self.abort)

    def start(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except Aborted:
                pass
            except BaseException as error:  # noqa: BLE001 - handed to the joining thread
                self._errors.append(error)
                self.abort.set()

        thread = threading.Thread(target=run, name=f"veil-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def join(self) -> None:
        """Wait for every thread; raise the first error any of them hit."""
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]

    def stop(self) -> None:
        """Make every thread give up at its next hand-off and wait for them (the caller's error wins)."""
        self.abort.set()
        for thread in self._threads:
            thread.join()


class Handoff:
    def __init__(self, size: int, abort: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._abort = abort

    def put(self, item: Any) -> None:
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def get(self) -> Any:
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                return self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue


class Slots:
    """At most ``count`` items of one kind in flight (frames in a queue shared with small audio packets)."""

    def __init__(self, count: int, abort: threading.Event) -> None:
        self._free = threading.Semaphore(count)
        self._abort = abort

    def take(self) -> None:
        while not self._free.acquire(timeout=_POLL_S):
            if self._abort.is_set():
                raise Aborted

    def give_back(self) -> None:
        self._free.release()
