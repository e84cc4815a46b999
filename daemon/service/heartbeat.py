"""The worker's heartbeat, sent from the loop that does the work (gunicorn's workers beat from their own
loop): a beat means the job moved, not merely that the process exists.

The pipeline calls ``progress()`` per video frame, per batch of re-detection windows and per detector window
of a photo; model loading calls it between engines. Beats are rate-limited, so a fast loop does not flood
the pipe. Outside a worker (a test, a REPL) nobody listens and ``progress()`` does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from daemon.service.messages import Heartbeat


class Beater:
    """Sends a ``Heartbeat`` through ``send`` at most once per ``min_interval_s``."""

    def __init__(self, send: Callable[[Heartbeat], None], min_interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._last: float | None = None

    def __call__(self) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._min_interval_s:
            return
        self._last = now
        try:
            self._send(Heartbeat(time.time()))
        except (OSError, ValueError):
            pass  # the parent is gone or closed the pipe: the worker's loop finds out on its next receive


_beater: Callable[[], None] | None = None  # one per worker process, installed by worker_main


def install(beater: Callable[[], None] | None) -> None:
    global _beater
    _beater = beater


def progress() -> None:
    """The work moved: beat (rate-limited). A no-op outside a worker."""
    if _beater is not None:
        _beater()
