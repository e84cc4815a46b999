"""What crosses the broker, as JSON: a task (``TaskPayload``) and its answer (``JobResult``).

A task names its job directory on the shared claim area; the worker reads the job's journal and its own
copy of the configuration for the rest (profile, zones, folders), so a message carries no file contents.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# published   the worker published the job (sidecar last); ``veil serve`` finalizes and records it
# processed   processed, the report stored, but publishing failed: ``veil serve`` publishes it
# retry       the attempt ended without a result (e.g. the input changed): ``veil serve`` decides
# gone        the job directory no longer exists (a duplicate delivery of a finished job)
# dead        dead-lettered after the delivery limit: ``veil serve`` fails the file
Status = Literal["published", "processed", "retry", "gone", "dead"]


class TaskPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    job_dir: str  # <ingest>/.veil/processing/<instance>/<job id>, on a share every worker mounts
    reply_to: str  # the results queue of the `veil serve` that enqueued it
    kind: Literal["photo", "video"]


class JobResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    status: Status
    report_json: str | None = None  # the sidecar (with the per-file features drift monitoring needs)
    failure: str | None = None
    deliveries: int = 0  # how many deliveries of this job reached a worker, this one included
    worker: str = ""  # the Celery node name (host included)
