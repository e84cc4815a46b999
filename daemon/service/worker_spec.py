"""What a worker is told: how to start (``WorkerSpec``) and what to do (``JobSpec``). Plain frozen records,
pickled into a spawned child, so they import nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.edits import Edits


@dataclass(frozen=True)
class JobSpec:
    """One job as the dispatcher sees it: paths on a filesystem the worker shares with the publisher."""

    job_id: str
    profile: str
    src: str  # the claimed input
    dst: str  # where the masked result is staged
    name: str  # ingest-relative name recorded in the sidecar
    edits: Edits | None = None  # the folder's camera zones (daemon/intake/zones.py), applied with the masks


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    device: str
    threads: int
    model_dir: str | None
    precision: str = "fp32"
    spin_wait: bool = False
    max_batch: int = 1  # RuntimeParams().max_batch; the workforce passes [service] max_batch
    classes_side_by_side: bool | None = None  # RuntimeParams().classes_side_by_side; likewise
    jobs: int = 1  # jobs at once, on threads sharing the engines ([service] jobs_per_worker)
    profiles: dict[str, str] = field(default_factory=dict)  # profile name -> Params as JSON
    runner: str = "daemon.service.worker:PipelineRunner"  # "module:Class"; unit tests inject fakes here
    heartbeat_s: float = 1.0  # at most one heartbeat per this many seconds, however fast the work moves
    log_level: str = "info"
