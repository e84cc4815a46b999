"""``veil serve``'s side of the Celery backend: the ``Dispatcher`` the service loop drives.

``submit`` enqueues a claimed job on the photo or video queue with its time limits (publisher confirms: it
returns once the broker holds the job; a broker that is away keeps the job here and it is sent again at each
poll). ``poll`` reads this instance's results queue, and forwards dead letters to the results queue of the
``veil serve`` that enqueued them. Jobs outlive this process: at a stop they stay on the broker and claimed
on disk; the next start enqueues its claims again, and a duplicate delivery is a no-op on the worker.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqp.exceptions import AMQPError
from kombu import Connection, Consumer, Message, Producer
from kombu.exceptions import OperationalError

from pipeline.report import failed_report

from daemon import log
from daemon.config.settings import Settings
from daemon.dispatch.app import make_app
from daemon.dispatch.limits import JobLimits, limits_for
from daemon.dispatch.payload import JobResult, TaskPayload
from daemon.dispatch.task import read_deliveries
from daemon.dispatch.topology import (
    TASK_NAME,
    dead_queue,
    queue_name,
    results_name,
    results_queue,
    task_queues,
)
from daemon.publish.outputs import sha256_or_none
from daemon.service.pool import InFlight, Outcome, PoolBroken
from daemon.service.worker_spec import JobSpec

_log = log.get("veil.dispatch")
_RECONNECT_S = 1.0
# What a broker that is away, restarting or refusing raises (kombu wraps socket errors, amqp has its own).
BROKER_ERRORS = (OSError, OperationalError, AMQPError)


@dataclass
class _Sent:
    spec: JobSpec
    limits: JobLimits
    submitted: float  # wall clock
    sent: bool = False


class CeleryDispatcher:
    remote = True  # jobs live on the broker: the workers prepare staging, and a stop leaves them claimed

    def __init__(self, settings: Settings) -> None:
        self.dispatch = settings.dispatch
        self.instance = settings.service.instance
        self.results = results_name(self.dispatch, self.instance)
        self._jobs: dict[str, _Sent] = {}
        self._outcomes: list[Outcome] = []
        self._url = ""
        self._app: Any = None
        self._conn: Connection | None = None
        self._next_connect = 0.0

    # -- start and stop ----------------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._url = self.dispatch.resolved_broker_url()
        except (OSError, ValueError) as exc:
            raise PoolBroken(f"broker URL: {exc}") from None
        self._app = make_app(self.dispatch, self._url)
        try:
            self._connect()
        except BROKER_ERRORS as exc:
            raise PoolBroken(f"broker {_safe(self._url)}: {exc}") from None

    def _connect(self) -> None:
        conn = Connection(self._url, heartbeat=0, transport_options={"confirm_publish": True})
        try:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            for queue in [*task_queues(self.dispatch), dead_queue(self.dispatch),
                          results_queue(self.dispatch, self.instance)]:
                queue(channel).declare()
            channel.basic_qos(0, 50, False)
            Consumer(channel, [results_queue(self.dispatch, self.instance)], callbacks=[self._on_result],
                     accept=["json"]).consume()
            Consumer(channel, [dead_queue(self.dispatch)], callbacks=[self._on_dead], accept=["json"]).consume()
        except BaseException:
            conn.release()
            raise
        self._conn = conn
        _log.info("broker_connected", broker=_safe(self._url), results=self.results)

    def stop(self, grace_s: float) -> list[Outcome]:
        """Nothing to wait for: enqueued jobs stay on the broker, and claimed on disk for the next start."""
        self._drop_connection()
        if self._app is not None:
            self._app.close()  # the producer pool's connections
        return []

    # -- dispatch ----------------------------------------------------------------------------------------

    def free_slots(self) -> int:
        return self.dispatch.max_in_flight - len(self._jobs)

    def idle_workers(self) -> int:
        return self.free_slots()  # a Celery child runs one job at a time: every job runs alone

    def submit(self, job: JobSpec, *, alone: bool = False) -> None:
        sent = _Sent(job, limits_for(Path(job.src), self.dispatch), time.time())
        self._jobs[job.job_id] = sent
        self._send(sent)

    def _send(self, sent: _Sent) -> bool:
        job = sent.spec
        payload = TaskPayload(job_id=job.job_id, job_dir=str(Path(job.src).parent.parent), reply_to=self.results,
                              kind=sent.limits.kind)
        try:
            self._app.send_task(TASK_NAME, args=[payload.model_dump()], task_id=job.job_id,
                                queue=queue_name(self.dispatch, sent.limits.kind),
                                soft_time_limit=sent.limits.soft_s, time_limit=sent.limits.hard_s,
                                retry=True, retry_policy={"max_retries": 1, "interval_start": 0.2})
        except Exception as exc:  # noqa: BLE001 - any broker failure: the job stays here and is sent again
            _log.warning("enqueue_failed", job=job.job_id, error=f"{type(exc).__name__}: {exc}")
            return False
        sent.sent = True
        _log.info("job_enqueued", job=job.job_id, queue=queue_name(self.dispatch, sent.limits.kind),
                  soft_limit_s=round(sent.limits.soft_s, 1), hard_limit_s=round(sent.limits.hard_s, 1))
        return True

    def in_flight(self) -> list[InFlight]:
        """Enqueued and unanswered, since the enqueue (worker -1: on the broker, waiting or running)."""
        return [InFlight(job_id, -1, None, sent.submitted) for job_id, sent in self._jobs.items()]

    # -- results -----------------------------------------------------------------------------------------

    def poll(self, timeout: float) -> list[Outcome]:
        for sent in list(self._jobs.values()):
            if not sent.sent and not self._send(sent):
                break  # the broker is still away: the rest wait for the next turn, the loop goes on
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self._outcomes:
                break
            self._drain(left)
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def _drain(self, timeout: float) -> None:
        if self._conn is None:
            if time.monotonic() < self._next_connect:
                time.sleep(min(timeout, self._next_connect - time.monotonic()))
                return
            try:
                self._connect()
            except BROKER_ERRORS as exc:
                _log.warning("broker_unreachable", broker=_safe(self._url), error=str(exc))
                self._next_connect = time.monotonic() + _RECONNECT_S
                return
        assert self._conn is not None
        try:
            self._conn.drain_events(timeout=timeout)
        except socket.timeout:
            return
        except BROKER_ERRORS as exc:  # the broker went away: results wait in their durable queue
            _log.warning("broker_connection_lost", error=str(exc))
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.release()
            except BROKER_ERRORS:
                pass
        self._next_connect = time.monotonic() + _RECONNECT_S

    def _on_result(self, body: Any, message: Message) -> None:
        try:
            result = JobResult.model_validate(body)
        except ValueError:
            _log.error("result_unreadable")
            message.ack()
            return
        outcome = self._outcome(result)
        if outcome is not None:
            self._jobs.pop(result.job_id, None)
            self._outcomes.append(outcome)
        message.ack()  # what it says is durable in the job's journal: a restart resumes from there

    def _outcome(self, result: JobResult) -> Outcome | None:
        sent = self._jobs.get(result.job_id)
        _log.info("job_result", job=result.job_id, status=result.status, worker=result.worker,
                  deliveries=result.deliveries, ours=sent is not None)
        if sent is None:
            return None  # a duplicate delivery's answer: the job is finished
        if result.status in ("published", "processed"):
            return Outcome(result.job_id, result.report_json)
        if result.status == "dead":
            return Outcome(result.job_id, _gave_up(sent.spec, result.deliveries or self.dispatch.delivery_limit))
        return Outcome(result.job_id, None, failure=result.failure or f"the worker answered {result.status!r}")

    def _on_dead(self, body: Any, message: Message) -> None:
        """A task the broker dead-lettered: tell the ``veil serve`` that enqueued it."""
        try:
            payload = TaskPayload.model_validate(body[0][0])
        except (ValueError, TypeError, IndexError, KeyError):
            _log.error("dead_letter_unreadable", headers=sorted(message.headers))
            message.ack()
            return
        result = JobResult(job_id=payload.job_id, status="dead", deliveries=read_deliveries(Path(payload.job_dir)))
        _log.warning("job_dead_lettered", job=payload.job_id, deliveries=result.deliveries)
        assert self._conn is not None
        Producer(message.channel).publish(result.model_dump(), exchange="", routing_key=payload.reply_to,
                                          serializer="json", delivery_mode=2)
        message.ack()


def _gave_up(job: JobSpec, deliveries: int) -> str:
    """The failed/ sidecar of a file that kept killing its worker."""
    src = Path(job.src)
    message = f"gave up after {deliveries} deliveries: the worker was lost each time (crash, kill or hard time limit)"
    return failed_report(job.name, src, sha256_or_none(src), "error", message).to_json()


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    return f"{scheme}{sep}{creds.split(':')[0]}:***@{host}"
