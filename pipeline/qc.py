"""The QC sidecar: what was found, what was masked, with which models, and the verdict.

It is written next to every output as ``<output name>.veil.json``. It never holds pixels.
Bump ``SCHEMA_VERSION`` on any incompatible change and document it in README.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "veil.qc/1"
SIDECAR_SUFFIX = ".veil.json"

Disposition = Literal["done", "review", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileInfo(_Model):
    name: str  # relative path as given to the pipeline, never an absolute path
    sha256: str | None = None
    size_bytes: int | None = None
    media_type: Literal["image", "video", "unknown"] = "unknown"
    format: str | None = None
    width: int | None = None
    height: int | None = None
    notes: list[str] = Field(default_factory=list)  # e.g. "converted CMYK to RGB"


class ModelRecord(_Model):
    name: str
    task: str
    family: str
    sha256: str
    providers: list[str]  # onnxruntime execution providers actually used, in priority order


class DetectionRecord(_Model):
    object_class: Literal["face", "license_plate"] = Field(alias="class")
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in output pixels
    band: Literal["confident", "review"]
    masked: bool

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorRecord(_Model):
    kind: str  # input | model | processing | error
    message: str


class QCReport(_Model):
    schema_version: str = SCHEMA_VERSION
    veil_version: str
    created_at: datetime
    processing_seconds: float = 0.0
    input: FileInfo
    output: FileInfo | None = None
    companions: list[str] = Field(default_factory=list)  # extra files written beside the output (names only)
    models: list[ModelRecord] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    detections: list[DetectionRecord] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)  # masked regions per class
    disposition: Disposition = "done"
    review_reasons: list[str] = Field(default_factory=list)
    error: ErrorRecord | None = None
    video: dict[str, Any] | None = None  # filled by the video pipeline (tracks, frames, warnings)
    features: dict | None = None  # drift-monitoring statistics, versioned inside (pipeline/features.py)
    # Every zone and manual edit applied (pipeline/edits.py Edits.summary), with what it did: an add's
    # frames_masked, a suppression's detections_suppressed. Ignore zones are listed even when idle.
    edits: list[dict[str, Any]] = Field(default_factory=list)
    approval: dict[str, Any] | None = None  # a reviewer's approval (daemon/review/rework.py): reviewer, approved_at, ...

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "QCReport":
        return cls.model_validate_json(text)
