"""The conversion pool (pipeline/media/video/convert.py): results in the order items came, a bounded number
in flight, errors raised where the results are taken, and how many threads a frame size gets."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.media.video import convert
from pipeline.media.video.convert import InOrder, conversion_threads


def test_results_come_back_in_the_order_items_came_whatever_finishes_first() -> None:
    def slow_then_fast(item: int) -> int:
        time.sleep(0.02 if item % 3 == 0 else 0.0)  # every third item finishes after the ones behind it
        return item * 10

    pool: InOrder[int, int] = InOrder(slow_then_fast, threads=3, name="test")
    taken = []
    for item in range(20):
        pool.push(item)
        taken += pool.ready()
    taken += pool.drain()
    pool.close()
    assert taken == [item * 10 for item in range(20)]


def test_no_more_items_are_in_flight_than_threads() -> None:
    running, peak, lock = 0, 0, threading.Lock()

    def tracked(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return item

    pool: InOrder[int, int] = InOrder(tracked, threads=2, name="test")
    held = []
    for item in range(12):
        pool.push(item)
        ready = pool.ready()
        held.append(len(pool._pending))  # a test looks inside: what the pool still holds after each push
        assert ready == sorted(ready)
    pool.drain()
    pool.close()
    assert peak == 2  # both threads were used, never more
    assert max(held) <= 2


def test_an_error_in_a_conversion_is_raised_where_its_result_is_taken() -> None:
    def fails_on_three(item: int) -> int:
        if item == 3:
            raise ValueError("bad frame")
        return item

    pool: InOrder[int, int] = InOrder(fails_on_three, threads=2, name="test")
    for item in range(5):
        pool.push(item)
    with pytest.raises(ValueError, match="bad frame"):
        pool.drain()
    pool.close()


def test_close_drops_what_is_pending_and_stops_the_threads() -> None:
    started = threading.Event()

    def slow(item: int) -> int:
        started.set()
        time.sleep(0.05)
        return item

    pool: InOrder[int, int] = InOrder(slow, threads=1, name="test-close")
    for item in range(6):
        pool.push(item)
    started.wait(1)
    pool.close()
    assert pool.drain() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("veil-test-close")]


def test_threads_by_frame_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert.os, "cpu_count", lambda: 16)
    assert conversion_threads(1920, 1080) == convert.MAX_THREADS
    assert conversion_threads(3840, 2160) == 1  # 25 MB a frame: one in flight
    monkeypatch.setattr(convert.os, "cpu_count", lambda: 2)
    assert conversion_threads(1920, 1080) == 2
    monkeypatch.setattr(convert.os, "cpu_count", lambda: None)
    assert conversion_threads(640, 480) == 1
