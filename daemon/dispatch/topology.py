"""Queue and exchange names, and the queues as kombu declares them. Every side declares them with the same
arguments (a queue redeclared with others is refused by the broker).

    <prefix>.photo, <prefix>.video     task queues: quorum, ``x-delivery-limit``, dead letters to <prefix>.dlx
    <prefix>.dlx -> <prefix>.dead      dead letters (fanout), read by every ``veil serve``
    <prefix>.results.<instance>        one ``veil serve``'s results (quorum: they survive a broker restart)
"""

from __future__ import annotations

from typing import Literal

from kombu import Exchange, Queue

from daemon.config.dispatch import DispatchSettings

Kind = Literal["photo", "video"]
KINDS: tuple[Kind, ...] = ("photo", "video")
TASK_NAME = "veil.process"


def queue_name(dispatch: DispatchSettings, kind: Kind) -> str:
    return f"{dispatch.queue_prefix}.{kind}"


def results_name(dispatch: DispatchSettings, instance: str) -> str:
    return f"{dispatch.queue_prefix}.results.{instance}"


def dead_name(dispatch: DispatchSettings) -> str:
    return f"{dispatch.queue_prefix}.dead"


def _quorum(extra: dict | None = None) -> dict:
    return {"x-queue-type": "quorum", **(extra or {})}


def task_queue(dispatch: DispatchSettings, kind: Kind) -> Queue:
    name = queue_name(dispatch, kind)
    arguments = _quorum({
        "x-delivery-limit": dispatch.delivery_limit,
        "x-dead-letter-exchange": f"{dispatch.queue_prefix}.dlx",
        # at-least-once: a dead letter is only dropped here once the dead-letter queue has confirmed it
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-consumer-timeout": int(dispatch.consumer_timeout_s * 1000),
    })
    return Queue(name, Exchange(name, "topic", durable=True), routing_key=name, durable=True,
                 queue_arguments=arguments)


def dead_queue(dispatch: DispatchSettings) -> Queue:
    exchange = Exchange(f"{dispatch.queue_prefix}.dlx", "fanout", durable=True)
    return Queue(dead_name(dispatch), exchange, routing_key="", durable=True, queue_arguments=_quorum())


def results_queue(dispatch: DispatchSettings, instance: str) -> Queue:
    name = results_name(dispatch, instance)
    return Queue(name, Exchange("", "direct"), routing_key=name, durable=True, queue_arguments=_quorum())


def task_queues(dispatch: DispatchSettings) -> list[Queue]:
    return [task_queue(dispatch, kind) for kind in KINDS]
