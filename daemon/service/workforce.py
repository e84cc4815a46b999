"""The workforce: how many worker processes start, on which device, with how many threads, and the profiles
each is given, with the active models applied; and the dispatcher that runs them (``[dispatch] backend``)."""

from __future__ import annotations

import os

from pipeline.detect.catalogue import default_model_dir

from daemon.config.settings import Settings
from daemon.models.registry import ActiveSelection, with_active_models
from daemon.service.pool import Dispatcher, LocalPool
from daemon.service.worker_spec import WorkerSpec


def make_dispatcher(settings: Settings, specs: list[WorkerSpec]) -> Dispatcher:
    """The local pool of ``specs``, or the Celery client (its workers are `veil worker` processes elsewhere)."""
    if settings.dispatch.backend == "celery":
        from daemon.dispatch.client import CeleryDispatcher  # only the celery backend needs the broker client

        return CeleryDispatcher(settings)
    service = settings.service
    return LocalPool(specs, job_timeout_s=service.job_timeout_s, heartbeat_timeout_s=service.heartbeat_timeout_s,
                     max_jobs=service.worker_max_jobs, max_rss_mb=service.worker_max_rss_mb)


def worker_specs(settings: Settings, models: ActiveSelection, runner: str) -> list[WorkerSpec]:
    service = settings.service
    model_dir = service.model_dir or default_model_dir()
    profiles = {name: with_active_models(params, models, model_dir).model_dump_json()
                for name, params in settings.profiles.items()}
    devices = [service.devices[i % len(service.devices)] for i in range(service.workers)]
    return [
        WorkerSpec(index=i, device=devices[i], threads=inference_threads(service.threads, devices[i], devices),
                   precision=service.precision, spin_wait=service.spin_wait, max_batch=service.max_batch,
                   classes_side_by_side=service.classes_side_by_side, jobs=service.jobs_per_worker,
                   model_dir=str(service.model_dir) if service.model_dir else None, profiles=profiles,
                   runner=runner, log_level=service.log_level)
        for i in range(service.workers)
    ]


def inference_threads(configured: int, device: str, devices: list[str]) -> int:
    """onnxruntime threads for one worker: as configured, else the machine's cores shared among the CPU
    workers, so that several workers never oversubscribe the cores (each would take them all by default)."""
    if configured or device != "cpu":
        return configured
    return max(1, (os.cpu_count() or 1) // devices.count("cpu"))
