"""What the engine needs from a detector network, and the table of families that build one.

A family (CenterFace, YOLOv8, ...) is one file: it wraps an onnxruntime session in a class that keeps the
``Detector`` protocol and registers a ``Family`` under the name a ``ModelSpec`` gives, the way frigate keys
its detector plugins by ``type``. Nothing else switches on the family's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import onnxruntime as ort

from pipeline.errors import ModelError

if TYPE_CHECKING:
    import onnx

Found = tuple[np.ndarray, np.ndarray]  # boxes (N, 4: x1, y1, x2, y2 in the input's pixels) and scores (N,)


class Detector(Protocol):
    """One loaded network. Boxes come back in the pixels of the image it was given, before NMS."""

    @property
    def fixed_input(self) -> int | None:
        """The square side every input is letterboxed to, or None: any size is fed as it is."""
        ...

    def __call__(self, rgb: np.ndarray, min_score: float) -> Found: ...

    def batch(self, images: list[np.ndarray], min_score: float) -> list[Found]:
        """``__call__`` on several images of one size, in as few runs as the network allows."""
        ...

    def run_once(self, options: ort.RunOptions) -> None:
        """One run on a blank input with ``options``: warms the session, or shrinks its memory arena."""
        ...


@dataclass(frozen=True)
class Family:
    """How a family's files are loaded: the graph rewrite before the session, and the wrapper after."""

    name: str
    fixed_input: bool  # the file fixes a square input side (letterboxed); False: any size, graph made dynamic
    prepare: Callable[[onnx.ModelProto], None]
    input_divisor: float  # the network's input is the pixels divided by this (pipeline/detect/frontend.py)
    build: Callable[[ort.InferenceSession, int], Detector]  # (session, number of classes the model declares)


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Called once by each family file, at import."""
    if family.name in _FAMILIES:
        raise ValueError(f"detector family {family.name!r} is registered twice")
    _FAMILIES[family.name] = family
    return family


def registered(name: str) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ModelError(f"unknown detector family {name!r} (known: {', '.join(sorted(_FAMILIES))})") from None


def registered_names() -> tuple[str, ...]:
    return tuple(_FAMILIES)
