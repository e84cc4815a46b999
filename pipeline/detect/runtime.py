"""Where and how inference runs on this host: the device, onnxruntime's threads and precision, the batches.

Not a processing parameter: these settings change where and how fast the networks run, not what is searched
or masked, so they come from the host's configuration (``[service]``), not from a profile. The sidecar
records each model's providers and precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RuntimeParams(BaseModel):
    """Where inference runs. The provider is explicit and recorded; there is no silent fallback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = "cpu"  # cpu | cuda | cuda:K
    threads: int = Field(default=0, ge=0)  # intra-op threads; 0 = onnxruntime's default
    # onnxruntime's intra-op threads spin between operators by default, burning cores that decode, encode and
    # other workers need. Off, 1080p video took 10-15% less CPU time and 5% less wall time on 2 cores, photos
    # 14% less CPU and 8% less wall (docs/benchmarks.md); on for a host with cores to spare and one worker.
    spin_wait: bool = False
    # Half precision gained nothing end to end on an H200 (bench/gpu.py): per-call overheads bound these networks.
    precision: Literal["fp32", "fp16"] = "fp32"
    # The most images a network takes in one call: windows of one image's plan, or the light passes of a video's
    # detected frames. 1 on the CPU, where batches held 230 MB more for 10% (docs/benchmarks.md); more on a GPU.
    max_batch: int = Field(default=1, ge=1)
    # Each class's detector on a thread of its own, so that a GPU runs one class's network while the host
    # prepares the other's; the same detections either way. None: on a GPU, off on the CPU, where the networks
    # already share the cores among their own threads (docs/benchmarks.md).
    classes_side_by_side: bool | None = None
    model_dir: Path | None = None  # None: the environment's share/veil/models

    @property
    def fp16(self) -> bool:
        return self.precision == "fp16"

    @property
    def side_by_side(self) -> bool:
        """``classes_side_by_side`` as it applies on this device."""
        return self.device != "cpu" if self.classes_side_by_side is None else self.classes_side_by_side
