"""The Celery application both ``veil serve`` and ``veil worker`` build from ``[dispatch]``.

The settings that make a lost worker cost a redelivery and never a lost job (docs/scale-out.md):
acknowledge late, requeue when the child dies, one unacknowledged message per worker, publisher confirms,
JSON only, and no result backend (results travel on ``veil serve``'s own results queue).
"""

from __future__ import annotations

from celery import Celery

from daemon.config.dispatch import DispatchSettings
from daemon.dispatch.topology import KINDS, TASK_NAME, queue_name, task_queues


def make_app(dispatch: DispatchSettings, broker_url: str, *, name: str = "veil") -> Celery:
    app = Celery(name, broker=broker_url, set_as_current=False)
    app.conf.update(
        task_queues=task_queues(dispatch),
        task_create_missing_queues=False,
        task_routes={TASK_NAME: {"queue": queue_name(dispatch, "photo")}},  # submit() always names its queue
        task_default_queue=queue_name(dispatch, "photo"),
        task_acks_late=True,  # a message leaves the queue only once its job is done
        task_reject_on_worker_lost=True,  # a child killed mid-job: the message goes back (a delivery counted)
        task_acks_on_failure=True,  # the task never raises: a failure is a published failed report
        task_acks_on_timeout=False,  # the hard limit killed the child: requeue, towards the delivery limit
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,  # one job per worker slot: nothing waits behind a long video
        worker_concurrency=1,
        worker_proc_alive_timeout=600.0,  # the child loads and warms the models before it says it is up
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # `celery events` and the fleet view see jobs start
        worker_detect_quorum_queues=True,
        broker_transport_options={"confirm_publish": True},  # enqueue returns once the broker has the job
        broker_connection_retry_on_startup=True,
        broker_heartbeat=30,
    )
    return app


__all__ = ["KINDS", "make_app"]
