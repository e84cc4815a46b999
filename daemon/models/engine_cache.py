"""Detector engines for re-rendering outside the worker pool (review approvals, rework documents).

Loaded on first use, one per distinct detector configuration, shared by threads; the runtime (device,
threads, model directory) is the service's first device.
"""

from __future__ import annotations

import threading

from pipeline.detect.engine import Engine
from pipeline.params import Params
from pipeline.detect.runtime import RuntimeParams

from daemon.config.settings import ServiceSettings


class EngineCache:
    def __init__(self, service: ServiceSettings) -> None:
        self._runtime = RuntimeParams(device=service.devices[0], threads=service.threads, precision=service.precision,
                                      spin_wait=service.spin_wait, max_batch=service.max_batch,
                                      classes_side_by_side=service.classes_side_by_side, model_dir=service.model_dir)
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def __call__(self, params: Params) -> Engine:
        key = params.detector.model_dump_json()
        with self._lock:
            if key not in self._engines:
                self._engines[key] = Engine.load(params.detector, self._runtime)
            return self._engines[key]
