"""Colour conversions between the codec's YUV and Veil's RGB, a few frames at a time on threads of their own.

A 1080p frame's conversion to RGB costs swscale about 10 ms on one core, and its way back about 8: alone
they cap a stream near 50 frames/s, whatever the decoder, the encoder and the detector could do (an H200
host's transcode floor was 51 frames/s on 16 cores). swscale releases the GIL, so frames convert side by
side on a small pool while the reader and the writer keep their order (docs/benchmarks.md, "The transcode
floor").
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from pipeline.media.video.frames import LARGE_FRAME_PIXELS

Item = TypeVar("Item")
Result = TypeVar("Result")

# Four at once convert 1080p at about 400 frames/s, twice what x264 ultrafast encodes on this 2-core machine.
MAX_THREADS = 4


def conversion_threads(width: int, height: int) -> int:
    """Frames converted at once: up to ``MAX_THREADS`` on a host with the cores; one above 1440p, where each
    frame in flight holds 25 MB (4K) and the encoder is the bound anyway."""
    if width * height > LARGE_FRAME_PIXELS:
        return 1
    return max(1, min(MAX_THREADS, os.cpu_count() or 1))


class InOrder(Generic[Item, Result]):
    """``convert`` on a stream of items, on ``threads`` threads, with the results handed back in the order the
    items came: ``push`` one item, then take the results that are due (``ready``) or all of them (``drain``).
    At most ``threads`` items are in flight, so memory stays a few frames."""

    def __init__(self, convert: Callable[[Item], Result], threads: int, name: str) -> None:
        self._convert = convert
        self._limit = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"veil-{name}")
        self._pending: deque[Future[Result]] = deque()

    def push(self, item: Item) -> None:
        self._pending.append(self._pool.submit(self._convert, item))

    def ready(self) -> list[Result]:
        """The oldest results, waited for, until no more than ``threads`` items are in flight."""
        done = []
        while len(self._pending) > self._limit:
            done.append(self._pending.popleft().result())
        return done

    def drain(self) -> list[Result]:
        """Every result still pending, in order."""
        done = []
        while self._pending:
            done.append(self._pending.popleft().result())
        return done

    def close(self) -> None:
        """Stop the threads; conversions still running finish first, their results are dropped."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)
