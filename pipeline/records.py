"""In-process records passed between pipeline stages (frozen, typed, no pydantic)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


def box4(values: Iterable[float]) -> tuple[float, float, float, float]:
    """Four coordinates (x1, y1, x2, y2) as plain floats, in the fixed-length tuple the records hold."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


class ObjectClass(IntEnum):
    """What a detection is. The values are the COCO category ids used by the evaluation sets."""

    FACE = 1
    LICENSE_PLATE = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> "ObjectClass":
        return cls[label.upper()]


@dataclass(frozen=True)
class Detections:
    """A struct of arrays: N boxes (x1, y1, x2, y2 in source pixels), their scores and classes."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        classes = np.asarray(self.classes, dtype=np.int32).reshape(-1)
        if not (len(boxes) == len(scores) == len(classes)):
            raise ValueError(f"length mismatch: {len(boxes)} boxes, {len(scores)} scores, {len(classes)} classes")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "classes", classes)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    @classmethod
    def of(cls, boxes: np.ndarray, scores: np.ndarray, object_class: ObjectClass) -> "Detections":
        """Detections that are all of one class (what one detector finds)."""
        return cls(boxes, scores, np.full(len(scores), int(object_class), dtype=np.int32))

    @classmethod
    def concat(cls, parts: list["Detections"]) -> "Detections":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.classes for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: int | slice | np.ndarray) -> "Detections":
        return Detections(self.boxes[index], self.scores[index], self.classes[index])

    def of_class(self, object_class: ObjectClass) -> "Detections":
        return self[self.classes == int(object_class)]


@dataclass(frozen=True)
class MaskRegion:
    """One region to mask: a box in source pixels and why it is masked."""

    box: tuple[float, float, float, float]
    object_class: ObjectClass
    score: float
    source: str = "detection"  # detection | track | interpolated | manual | zone
