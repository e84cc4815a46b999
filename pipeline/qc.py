"""The QC sidecar: what was found, what was masked, with which models, and the verdict.

It is written next to every output as ``<output name>.veil.json``. It never holds pixels.
Bump ``SCHEMA_VERSION`` on any incompatible change and document it in docs/sidecar.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "veil.qc/1"
SIDECAR_SUFFIX = ".veil.json"

Disposition = Literal["done", "review", "failed"]
MediaType = Literal["image", "video", "unknown"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileInfo(_Model):
    name: str  # relative path as given to the pipeline, never an absolute path
    sha256: str | None = None
    size_bytes: int | None = None
    media_type: MediaType = "unknown"
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
    precision: Literal["fp32", "fp16", "int8"] = "fp32"  # the arithmetic the model ran in


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


class TrackSummary(_Model):
    id: int
    object_class: str = Field(alias="class")
    first_frame: int
    last_frame: int
    detected_frames: int
    min_score: float
    max_score: float
    filled: dict[str, int]  # frames masked without a detection of their own, by how: interpolated, predicted, ...

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class VideoSummary(_Model):
    container: str
    codec_in: str
    codec_out: str
    width: int
    height: int
    rotation: int
    frames_declared: int | None
    frames_decoded: int
    frames_written: int
    frames_detected: int  # frames the detector ran on (detection stride)
    detect_stride: int
    duration_in_s: float | None
    audio_streams: list[str]  # codecs copied unchanged
    dropped_streams: list[str]
    tracks: list[TrackSummary]
    untracked_detections: int  # raw detections masked that joined no track (mostly the low-score band)
    detection_gaps: int  # detected frames with nothing found while the detected frames either side had something
    detection_gap_frames: list[int]
    review_band_frames: dict[str, int]  # per class, frames with a review-band detection
    decode_warnings: list[str]
    decode_warning_count: int
    corrupt_frames: list[int]
    # The deep pass (pipeline/video/keyframes.py): keyframes searched with the photo plan (those after a scene
    # cut among them), the confident objects it found there, and how many of those the light frame plan
    # missed on the same frame: the light plan's miss rate in this file. Per class, the keyframe intervals
    # that begin and end with a find the light plan never saw on any frame (``LightBlindness``).
    keyframes: int = 0
    scene_cuts: int = 0
    keyframe_objects: int = 0
    light_plan_missed: int = 0
    light_blind_intervals: dict[str, int] = {}
    # Keyframes that also got the 45-degree face views, the faces those added, the light passes between
    # keyframes that got them because the shot leaned (and of those views, the ones each got, by their degrees
    # counter-clockwise: "+45", "-45"), and the keyframe intervals that leaned at both ends (``TiltedViews``).
    tilted_keyframes: int = 0
    tilted_faces: int = 0
    tilted_frames: int = 0
    tilted_frame_views: dict[str, int] = {}
    tilted_intervals: int = 0
    # The light passes by what they searched (pipeline/video/light_plan.py): "face x1", "face x0.5", ...; "plates,
    # tiles" or "plates, whole frame" (no plate known).
    light_plans: dict[str, int] = {}
    # Busy seconds per stage (decode, detect, motion, plan, mask, encode); stages overlap on threads, so
    # they sum to more than the wall time. For capacity planning: the largest one is the bottleneck.
    stage_seconds: dict[str, float] = {}


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
    review_reasons: list[str] = Field(default_factory=list)  # why the file went to review (empty: it did not)
    # Uncertain findings the profile's review policy does not route to review (masked review-band detections
    # under "leak-risk"): recorded for audit, not sent to a person.
    review_notes: list[str] = Field(default_factory=list)
    error: ErrorRecord | None = None
    # Photos: plate-like regions (x1, y1, x2, y2) the cross-check found that no mask touches (review.plate_cross_check).
    plate_cross_check: list[tuple[float, float, float, float]] = Field(default_factory=list)
    video: dict[str, Any] | None = None  # a VideoSummary, filled by the video pipeline (tracks, frames, warnings)
    features: dict | None = None  # drift-monitoring statistics, versioned inside (pipeline/features.py)
    # Every zone and manual edit applied (pipeline/edits.py Edits.summary), with what it did: an add's
    # frames_masked, a suppression's detections_suppressed. Ignore zones are listed even when idle.
    edits: list[dict[str, Any]] = Field(default_factory=list)
    job: str | None = None  # the Veil job that published it (set by the service's publish step, not the pipeline)
    approval: dict[str, Any] | None = None  # a reviewer's approval (daemon/review/rework/): reviewer, approved_at, ...

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "QCReport":
        return cls.model_validate_json(text)
