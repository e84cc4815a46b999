"""Where a file's processing time goes, per stage (decode, detect, mask, encode, ...).

Stages run on several threads at once, so their seconds add up to more than the wall time; each is the
busy time of that stage alone, which is what tells the next bottleneck. Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageClock:
    def __init__(self) -> None:
        self._seconds: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] += seconds

    def seconds(self) -> dict[str, float]:
        with self._lock:
            return {stage: round(value, 3) for stage, value in self._seconds.items()}
