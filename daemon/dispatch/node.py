"""``veil worker``: one Celery worker node, one unit of work (a GPU, or the CPU).

Prefork with one child, never ``--pool=solo`` (a solo worker stops answering the broker's heartbeats during a
job). The parent holds no models: the child loads and warms them in ``worker_process_init``, and a child the
pool replaces (killed mid-job, hard time limit) loads them again. A GPU unit is pinned with
``CUDA_VISIBLE_DEVICES`` before anything CUDA-aware is imported, so the child sees exactly one device.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
from typing import Any

from celery.exceptions import Reject
from celery.signals import worker_process_init

from daemon import log
from daemon.config.dispatch import DispatchSettings
from daemon.config.settings import Settings
from daemon.dispatch.app import make_app
from daemon.dispatch.metrics import WorkerMetrics
from daemon.dispatch.metrics import metrics_port as worker_metrics_port
from daemon.dispatch.payload import JobResult, TaskPayload
from daemon.dispatch.task import deliver
from daemon.dispatch.topology import KINDS, TASK_NAME, Kind, queue_name, results_queue
from daemon.models.registry import ActiveSelection
from daemon.service.worker import Runner, load_runner
from daemon.service.worker_spec import WorkerSpec
from daemon.service.workforce import inference_threads, worker_specs

_log = log.get("veil.worker")


def pin_unit(unit: str) -> str:
    """The onnxruntime device for ``unit`` ("cpu" or a GPU index), pinning the GPU for this process tree."""
    if unit == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return "cpu"
    if not unit.isdigit():
        raise ValueError(f"a unit is 'cpu' or a GPU index, not {unit!r}")
    os.environ["CUDA_VISIBLE_DEVICES"] = unit
    return "cuda"  # the only device this process can see


def unit_spec(settings: Settings, models: ActiveSelection, device: str, runner: str) -> WorkerSpec:
    spec = worker_specs(settings, models, runner)[0]
    threads = inference_threads(settings.service.threads, device, [device])
    # A node's child runs one task at a time (prefork, one child): [service] jobs_per_worker is the local pool's.
    return dataclasses.replace(spec, device=device, threads=threads, jobs=1)


class Child:
    """What the prefork child holds: its runner (the models), built once the child exists, and its metrics."""

    def __init__(self, settings: Settings, spec: WorkerSpec, node: str, metrics_port: int = 0) -> None:
        self.settings = settings
        self.spec = spec
        self.node = node
        self.metrics_port = metrics_port
        self.runner: Runner | None = None
        self.metrics: WorkerMetrics | None = None

    def load(self, **_: Any) -> None:
        try:
            self.runner = load_runner(self.spec)
        except Exception as exc:
            _log.error("worker_start_failed", error=f"{type(exc).__name__}: {exc}")
            os.kill(os.getppid(), signal.SIGTERM)
            raise
        if self.metrics_port:
            self.metrics = WorkerMetrics(self.node)
            try:
                self.metrics.serve(self.settings.metrics.address, self.metrics_port)
            except OSError as exc:  # e.g. the port of a child just replaced is not free yet: jobs go on
                _log.error("worker_metrics_unavailable", port=self.metrics_port, error=str(exc))
        _log.info("worker_child_ready", pid=os.getpid(), device=self.spec.device, metrics_port=self.metrics_port)


def register_task(app: Any, child: Child) -> None:
    dispatch = child.settings.dispatch

    @app.task(name=TASK_NAME, bind=True)
    def process(task: Any, payload: dict) -> None:
        request = task.request
        job = TaskPayload.model_validate(payload)
        assert child.runner is not None, "worker_process_init loaded the runner"
        soft = (request.timelimit or (None, None))[1]
        if child.metrics is not None:
            child.metrics.job_started()
        result = deliver(job, child.settings, child.runner, node=request.hostname or "", soft_limit_s=soft)
        if child.metrics is not None:
            child.metrics.job_finished(job.kind, result)
        _log.info("job_delivered", job=job.job_id, status=result.status, deliveries=result.deliveries)
        try:
            answer(app, dispatch, job.reply_to, result)
        except Exception as exc:  # noqa: BLE001 - the answer is lost: requeue, a redelivery answers from the journal
            _log.error("answer_failed", job=job.job_id, error=f"{type(exc).__name__}: {exc}")
            raise Reject(str(exc), requeue=True) from None


def answer(app: Any, dispatch: DispatchSettings, reply_to: str, result: JobResult) -> None:
    """Publish ``result`` on ``reply_to``, confirmed: the task is acknowledged only once the answer is durable."""
    prefix = f"{dispatch.queue_prefix}.results."
    declare = [results_queue(dispatch, reply_to[len(prefix):])] if reply_to.startswith(prefix) else []
    with app.producer_or_acquire() as producer:
        producer.publish(result.model_dump(), exchange="", routing_key=reply_to, serializer="json", delivery_mode=2,
                         declare=declare, retry=True,
                         retry_policy={"max_retries": 20, "interval_start": 0.5, "interval_step": 1.0, "interval_max": 3.0})


def run_worker(settings: Settings, models: ActiveSelection, *, unit: str, kinds: tuple[Kind, ...] = KINDS,
               node_name: str | None = None, runner: str = "daemon.service.worker:PipelineRunner",
               metrics_port: int | None = None) -> int:
    """``metrics_port`` None: from ``dispatch.worker_metrics_port`` and the unit; 0: no metrics."""
    device = pin_unit(unit)
    dispatch = settings.dispatch
    app = make_app(dispatch, dispatch.resolved_broker_url())
    name = node_name or f"veil-{unit}@{socket.gethostname()}"
    port = metrics_port if metrics_port is not None else worker_metrics_port(dispatch.worker_metrics_port, unit)
    child = Child(settings, unit_spec(settings, models, device, runner), name, port)
    worker_process_init.connect(child.load, weak=False)
    register_task(app, child)
    worker = app.Worker(hostname=name, pool_cls="prefork", concurrency=1,
                        queues=[queue_name(dispatch, kind) for kind in kinds], loglevel=settings.service.log_level.upper(),
                        without_mingle=True, optimization="fair", prefetch_multiplier=1)
    _log.info("worker_starting", node=name, unit=unit, device=device, queues=list(kinds))
    worker.start()
    return int(worker.exitcode or 0)


__all__ = ["KINDS", "run_worker"]
