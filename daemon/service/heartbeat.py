"""The worker's heartbeat, sent from the loop that does the work (gunicorn's workers beat from their own
loop): a beat means the job moved, not merely that the process exists.

The pipeline calls ``progress()`` per video frame, per batch of re-detection windows and per detector window
of a photo; model loading calls it between engines. Each beat names its job, so that in a worker running
several jobs at once (``[service] jobs_per_worker``) a job that stopped moving is found although its
neighbours beat. Beats are rate-limited per job, so a fast loop does not flood the pipe. Outside a worker (a
test, a REPL) nobody listens and ``progress()`` does nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from daemon.service.messages import Heartbeat


class Beater:
    """Sends a ``Heartbeat`` for a job (None: the worker itself, while it starts) through ``send``, at most
    once per ``min_interval_s`` for each."""

    def __init__(self, send: Callable[[Heartbeat], None], min_interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._last: dict[str | None, float] = {}
        self._lock = threading.Lock()  # jobs on threads of their own beat at once

    def __call__(self, job_id: str | None = None) -> None:
        now = self._clock()
        with self._lock:
            last = self._last.get(job_id)
            if last is not None and now - last < self._min_interval_s:
                return
            self._last[job_id] = now
        try:
            self._send(Heartbeat(time.time(), job_id))
        except (OSError, ValueError):
            pass  # the parent is gone or closed the pipe: the worker's loop finds out on its next receive

    def forget(self, job_id: str) -> None:
        """The job ended: its entry goes, so a long-lived worker does not collect one per job."""
        with self._lock:
            self._last.pop(job_id, None)


_beater: Beater | None = None  # one per worker process, installed by worker_main
_current = threading.local()  # the job a worker's job thread runs (``running``)


def install(beater: Beater | None) -> None:
    global _beater
    _beater = beater


def running(job_id: str | None) -> None:
    """This thread now runs ``job_id`` (None: nothing): its ``progress()`` calls beat for that job."""
    _current.job_id = job_id


def progress() -> None:
    """The work of this thread's job moved: beat (rate-limited). A no-op outside a worker."""
    if _beater is not None:
        _beater(getattr(_current, "job_id", None))


def for_this_job() -> Callable[[], None]:
    """``progress`` bound to this thread's job, for work that may beat from threads it starts, where the
    thread's own job (``running``) is not known."""
    job_id = getattr(_current, "job_id", None)

    def beat() -> None:
        if _beater is not None:
            _beater(job_id)

    return beat
