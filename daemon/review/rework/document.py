"""The rework document (``veil.rework/1``): its schema, checked on parse, with readable reasons.

The format is described in daemon/review/rework/__init__.py. Coordinates are relative (0..1 of width and
height); a document names its item by the SHA-256 of the original.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA: Final = "veil.rework/1"
REWORK_SUFFIX = ".rework.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Bounds on what one document may ask for: the page never comes near them, a hostile document cannot make a
# re-render take the machine. Key frames are also bounded by the item's frame count (edits.py).
MAX_DOCUMENT_BYTES = 1 << 20
MAX_ADD = 1_000  # regions added
MAX_FALSE_POSITIVES = 20_000  # the page sends one per frame of a track marked false
MAX_POINTS = 1_000  # points of one polygon
MAX_KEYS = 100_000  # key boxes of one region

Box = tuple[float, float, float, float]


class ReworkError(Exception):
    """The rework cannot be done; the message says why (and names no personal data)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_box(box: Box) -> Box:
    x1, y1, x2, y2 = box
    if not all(0.0 <= v <= 1.0 for v in box):
        raise ValueError(f"box {list(box)} is not in relative coordinates (0..1)")
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {list(box)} is empty (x2 <= x1 or y2 <= y1)")
    return box


def _check_frames(frames: tuple[int, int] | None) -> tuple[int, int] | None:
    if frames is not None and not (0 <= frames[0] <= frames[1]):
        raise ValueError(f"frames {list(frames)} must be an inclusive range [first, last] with 0 <= first <= last")
    return frames


class AddSpec(_Strict):
    """One region to mask: exactly one of ``box``, ``polygon`` or ``keys``."""

    box: Box | None = None
    polygon: tuple[tuple[float, float], ...] | None = Field(default=None, max_length=MAX_POINTS)
    keys: dict[int, Box] | None = Field(default=None, max_length=MAX_KEYS)  # frame -> box, interpolated between
    frames: tuple[int, int] | None = None  # with box/polygon; None: every frame
    object_class: Literal["face", "license_plate", "other"] | None = Field(default=None, alias="class")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("box")
    @classmethod
    def _box(cls, value: Box | None) -> Box | None:
        return None if value is None else _check_box(value)

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value):
        if value is None:
            return None
        if len(value) < 3:
            raise ValueError("a polygon needs at least 3 points")
        if not all(0.0 <= v <= 1.0 for point in value for v in point):
            raise ValueError("polygon points must be relative coordinates (0..1)")
        return value

    @field_validator("keys")
    @classmethod
    def _keys(cls, value):
        if value is None:
            return None
        if not value:
            raise ValueError("keys needs at least one key box")
        if min(value) < 0:
            raise ValueError("key frames must be >= 0")
        return {frame: _check_box(box) for frame, box in value.items()}

    @field_validator("frames")
    @classmethod
    def _frames(cls, value):
        return _check_frames(value)

    @model_validator(mode="after")
    def _one_shape(self) -> "AddSpec":
        given = [name for name in ("box", "polygon", "keys") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of box, polygon or keys (got {given or 'none'})")
        if self.keys is not None and self.frames is not None:
            raise ValueError("keys carry their own frames; leave frames out")
        return self


class FalsePositiveSpec(_Strict):
    """A detection the reviewer says is not a face or plate: detections centred inside are not masked."""

    box: Box | None = None
    polygon: tuple[tuple[float, float], ...] | None = Field(default=None, max_length=MAX_POINTS)
    frames: tuple[int, int] | None = None

    @field_validator("box")
    @classmethod
    def _box(cls, value: Box | None) -> Box | None:
        return None if value is None else _check_box(value)

    @field_validator("frames")
    @classmethod
    def _frames(cls, value):
        return _check_frames(value)

    @model_validator(mode="after")
    def _one_shape(self) -> "FalsePositiveSpec":
        if (self.box is None) == (self.polygon is None):
            raise ValueError("give exactly one of box or polygon")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return self


class ReworkDocument(_Strict):
    schema_: Literal["veil.rework/1"] = Field(default=SCHEMA, alias="schema")
    id: str
    reviewer: str = Field(default="rework-folder", min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")
    add: tuple[AddSpec, ...] = Field(default=(), max_length=MAX_ADD)
    false_positives: tuple[FalsePositiveSpec, ...] = Field(default=(), max_length=MAX_FALSE_POSITIVES)
    # Review-band detections the profile left unmasked (mask_review_band = false): "mask" them in the
    # re-render, or "publish" them unmasked. Required when there are any (decision.py); audited.
    unmasked_review_band: Literal["mask", "publish"] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("id")
    @classmethod
    def _sha(cls, value: str) -> str:
        value = value.lower()
        if not _SHA256.match(value):
            raise ValueError("id must be the original's SHA-256 (64 hex digits), as in its sidecar's input.sha256")
        return value


def parse_document(text: str | bytes) -> ReworkDocument:
    """Parse and validate a rework document; ReworkError with a readable reason otherwise."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ReworkError(f"invalid rework document: larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return ReworkDocument.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors())
        raise ReworkError(f"invalid rework document: {problems}") from None


def read_document(path: Path) -> bytes:
    """The bytes of a document dropped in rework/: a regular file (no link followed, no FIFO waited on), read
    no further than one byte past the size limit (parse_document then refuses it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ReworkError(f"cannot read the document: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ReworkError("the document is not a regular file")
        return handle.read(MAX_DOCUMENT_BYTES + 1)
