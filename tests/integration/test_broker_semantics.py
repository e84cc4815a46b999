"""What the installed RabbitMQ does with the queue arguments Veil declares (daemon/dispatch/topology.py), shown
with plain kombu: a delivery that ends without an ack counts towards ``x-delivery-limit`` whether the worker
rejected it (Celery's parent, when its child died) or vanished with its connection (a host lost), and the
message then lands in the dead-letter queue; one that is acknowledged never does."""

from __future__ import annotations

import pytest
from kombu import Connection, Producer

from daemon.config.dispatch import DispatchSettings
from daemon.dispatch.topology import dead_queue, task_queue

from tests.integration.broker_harness import broker  # noqa: F401 - fixture
from tests.integration.serve_harness import wait_for


def _settings(broker, limit: int) -> DispatchSettings:
    return DispatchSettings(backend="celery", broker_url=broker.url, queue_prefix=broker.prefix, delivery_limit=limit)


def _setup(broker, limit: int) -> DispatchSettings:
    dispatch = _settings(broker, limit)
    with Connection(broker.url) as conn:
        channel = conn.channel()
        for queue in (task_queue(dispatch, "photo"), dead_queue(dispatch)):
            queue(channel).declare()
        Producer(channel).publish({"job": 1}, exchange=f"{broker.prefix}.photo", routing_key=f"{broker.prefix}.photo",
                                  serializer="json", delivery_mode=2)
    return dispatch


def _take(broker, queue: str, end: str) -> bool:
    """Take one message from ``queue`` without acking it, then end the delivery; False if there was none."""
    conn = Connection(broker.url)
    channel = conn.channel()
    channel.basic_qos(0, 1, False)
    message = channel.basic_get(f"{broker.prefix}.{queue}", no_ack=False)
    if message is None:
        conn.release()
        return False
    if end == "reject":
        channel.basic_reject(message.delivery_tag, requeue=True)
    elif end == "ack":
        channel.basic_ack(message.delivery_tag)
    conn.release()  # "lost": the connection closes with the message unacknowledged
    return True


@pytest.mark.parametrize("end", ["reject", "lost"])
def test_every_unacknowledged_end_counts_towards_the_delivery_limit(broker, end):
    _setup(broker, limit=2)
    for _ in range(3):  # the first delivery and the two the limit allows
        assert _take(broker, "photo", end)
    assert broker.depth("photo") == 0
    assert wait_for(lambda: broker.depth("dead") == 1, 10, "the dead letter")


def test_an_acknowledged_job_is_never_dead_lettered(broker):
    _setup(broker, limit=1)
    assert _take(broker, "photo", "reject")
    assert _take(broker, "photo", "ack")
    assert not _take(broker, "photo", "lost")
    assert broker.depth("photo") == broker.depth("dead") == 0
