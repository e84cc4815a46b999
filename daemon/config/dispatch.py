"""``[dispatch]``: where claimed jobs run. ``local`` (the default): this host's worker pool, no broker.
``celery``: a Celery queue on RabbitMQ quorum queues, worked by ``veil worker`` processes on any host that
mounts the same shares (docs/scale-out.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CREDENTIAL = "broker.url"  # the name the units give the broker file (LoadCredential=broker.url:...)


class DispatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["local", "celery"] = "local"
    # The broker's URL comes from a root-only file (e.g. /etc/veil/broker.url, mode 0600): credentials never
    # sit in the unit, the command line or this file. ``broker_url`` is for development and tests.
    broker_url_file: Path | None = None
    broker_url: str | None = None
    queue_prefix: str = Field(default="veil", pattern=r"^[A-Za-z0-9_.-]+$")  # every queue and exchange name
    delivery_limit: int = Field(default=3, ge=1)  # deliveries that end without an ack before a dead letter
    max_in_flight: int = Field(default=64, ge=1)  # jobs enqueued and unfinished per `veil serve`
    photo_soft_limit_s: float = Field(default=300.0, gt=0)  # a photo's time limit (the soft one)
    video_base_s: float = Field(default=120.0, gt=0)  # a video's soft limit: base + factor x its duration
    video_factor: float = Field(default=10.0, gt=0)
    max_job_s: float = Field(default=6 * 3600.0, gt=0)  # no soft limit above this (undecodable duration too)
    hard_grace_s: float = Field(default=60.0, gt=0)  # the hard limit (child killed): soft limit + this
    # An unacknowledged delivery older than this is taken back by the broker. Declared on the queues as
    # x-consumer-timeout (RabbitMQ 3.12+); older brokers need consumer_timeout in rabbitmq.conf instead.
    consumer_timeout_s: float = Field(default=8 * 3600.0, gt=0)
    # Prometheus metrics of each `veil worker` node on [metrics] address: this port for the CPU unit, this
    # + 1 + k for GPU k (so that every node of a host has its own); 0: none.
    worker_metrics_port: int = Field(default=0, ge=0, le=65000)

    @field_validator("broker_url_file")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(os.path.abspath(os.path.expanduser(value)))

    @model_validator(mode="after")
    def _consistent(self) -> "DispatchSettings":
        if self.backend == "celery" and self.broker_url is None and self.broker_url_file is None:
            raise ValueError("dispatch.backend = 'celery' needs dispatch.broker_url_file (or broker_url)")
        if self.consumer_timeout_s <= self.max_job_s + self.hard_grace_s:
            raise ValueError("dispatch.consumer_timeout_s must be above max_job_s + hard_grace_s: the broker "
                             "would take a long job away from its worker")
        return self

    def resolved_broker_url(self) -> str:
        """The URL: systemd's copy of the root-only file (LoadCredential=broker.url:...) when the unit has one,
        else ``broker_url_file``, else ``broker_url``. Raises OSError (unreadable) or ValueError (empty)."""
        credentials = os.environ.get("CREDENTIALS_DIRECTORY")
        source = Path(credentials) / CREDENTIAL if credentials and (Path(credentials) / CREDENTIAL).is_file() \
            else self.broker_url_file
        if source is None:
            return self.broker_url or ""
        text = source.read_text().strip()
        if not text:
            raise ValueError(f"{source} is empty")
        return text
