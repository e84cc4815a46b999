"""The model registry: every detector model Veil may use, with its contract, licence and checksum.

Two small JSON files live in the model directory (``service.model_dir``), beside the files they describe:

    registry.json  models added with ``veil models add`` (the catalogue's defaults are always listed too)
    active.json    which registered model serves each task, with its sha256 pin (``veil models activate``)

Both are written atomically under a lock, by the command line only; the service reads ``active.json`` at
start and on SIGHUP. A model's file is copied in as ``<name>-<sha256 prefix>.onnx`` and never changed.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon.fsutil import publish_file, write_atomic
from pipeline.detect.catalogue import DEFAULT_MODELS, ModelSource, sha256_of
from pipeline.params import ClassLabel, DetectorParams, FamilyName, ModelSpec, Params
from pipeline.records import ObjectClass

REGISTRY_NAME = "registry.json"
ACTIVE_NAME = "active.json"
_LOCK_NAME = ".registry.lock"

Task = ClassLabel  # a task is the class a model serves


class RegistryError(Exception):
    """A registry or active-selection file is unreadable, or a request contradicts it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisteredModel(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    family: FamilyName
    classes: tuple[Task, ...] = Field(min_length=1)
    input_size: int | None = None
    license: str
    source: str  # where it came from: a registry wheel, or the file given to ``veil models add``
    file: str  # file name inside the model directory
    sha256: str
    added_at: datetime | None = None  # None: a default from the catalogue
    builtin: bool = False

    def spec(self, model_dir: Path) -> ModelSpec:
        """The ModelSpec that loads exactly this file (the checksum is pinned)."""
        return ModelSpec(name=self.name, family=self.family, path=model_dir / self.file, classes=self.classes,
                         input_size=self.input_size, sha256=self.sha256)


class _RegistryFile(_Strict):
    version: Literal[1] = 1
    models: tuple[RegisteredModel, ...] = ()


class ActiveModel(_Strict):
    name: str
    file: str
    sha256: str
    family: FamilyName
    classes: tuple[Task, ...]
    input_size: int | None = None
    activated_at: datetime


class ActiveSelection(_Strict):
    """Which model serves each task. A task not listed uses the profile's configured model (the default)."""

    version: Literal[1] = 1
    tasks: dict[Task, ActiveModel] = {}


def builtin(source: ModelSource) -> RegisteredModel:
    return RegisteredModel(name=source.name, family=source.family, classes=source.classes,
                           input_size=source.input_size, license=source.license,
                           source=f"{source.wheel} ({source.member})", file=source.file_name, sha256=source.sha256,
                           builtin=True)


class Registry:
    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir

    # -- reading -----------------------------------------------------------------------------------------

    def models(self) -> list[RegisteredModel]:
        return [builtin(s) for s in DEFAULT_MODELS] + list(self._read(REGISTRY_NAME, _RegistryFile).models)

    def get(self, name: str) -> RegisteredModel:
        for model in self.models():
            if model.name == name:
                return model
        raise RegistryError(f"no model named {name!r} in the registry of {self.model_dir}")

    def selection(self) -> ActiveSelection:
        return self._read(ACTIVE_NAME, ActiveSelection)

    def active(self, task: str) -> RegisteredModel:
        """The model serving ``task``: the active selection's, else the catalogue default for the task."""
        chosen = self.selection().tasks.get(task)
        if chosen is not None:
            return self.get(chosen.name)
        return next(builtin(s) for s in DEFAULT_MODELS if s.task == task)

    def state(self, model: RegisteredModel) -> str:
        """``ok``, ``missing`` or ``checksum mismatch``: the file on disk against the registered sha256."""
        path = self.model_dir / model.file
        if not path.is_file():
            return "missing"
        return "ok" if sha256_of(path) == model.sha256 else "checksum mismatch"

    def _read(self, name: str, model: type[BaseModel]):
        path = self.model_dir / name
        try:
            return model.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return model()
        except (OSError, ValidationError, ValueError) as exc:
            raise RegistryError(f"{path} is unreadable: {exc}") from None

    # -- writing (the command line only) -----------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.model_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # two `veil models` at once must not lose each other's update
            yield
        finally:
            os.close(fd)

    def add(self, name: str, src: Path, *, family: str, classes: tuple[str, ...], input_size: int | None,
            license: str) -> RegisteredModel:
        """Copy ``src`` in under a name that carries its checksum, and record it. The caller checks the
        contract first (daemon/models/check.py): the registry only stores."""
        digest = sha256_of(src)
        model = RegisteredModel(name=name, family=family, classes=classes, input_size=input_size,
                                license=license, source=str(src.resolve()), file=f"{name}-{digest[:12]}.onnx",
                                sha256=digest, added_at=datetime.now(timezone.utc))
        with self._locked():
            if any(m.name == name for m in self.models()):
                raise RegistryError(f"a model named {name!r} is already registered")
            target = self.model_dir / model.file
            if not target.exists():
                publish_file(src, target)
            if sha256_of(target) != digest:  # the copy, or a file left there earlier, is not what was checked
                raise RegistryError(f"{target} does not match the checksum of {src}")
            current = self._read(REGISTRY_NAME, _RegistryFile)
            updated = _RegistryFile(models=(*current.models, model))
            write_atomic(self.model_dir / REGISTRY_NAME, updated.model_dump_json(indent=1).encode())
        return model

    def set_active(self, task: str, model: RegisteredModel) -> ActiveSelection:
        if task not in model.classes:
            raise RegistryError(f"model {model.name!r} does not declare {task!r} (declares {', '.join(model.classes)})")
        entry = ActiveModel(name=model.name, file=model.file, sha256=model.sha256, family=model.family,
                            classes=model.classes, input_size=model.input_size, activated_at=datetime.now(timezone.utc))
        with self._locked():
            current = self.selection()
            updated = ActiveSelection(tasks={**current.tasks, task: entry})
            write_atomic(self.model_dir / ACTIVE_NAME, updated.model_dump_json(indent=1).encode())
        return updated


def with_active_models(params: Params, selection: ActiveSelection, model_dir: Path) -> Params:
    """``params`` with the active model for each task, where the profile uses the default model.

    A profile that configures its own model for a task keeps it: the operator chose it by name.
    """
    defaults = DetectorParams()
    detector = params.detector
    for task, active in selection.tasks.items():
        object_class = ObjectClass.from_label(task)
        if detector.for_class(object_class).model == defaults.for_class(object_class).model:
            detector = detector.with_model(object_class, ModelSpec(
                name=active.name, family=active.family, path=model_dir / active.file, classes=active.classes,
                input_size=active.input_size, sha256=active.sha256))
    if detector is params.detector:
        return params
    return params.model_copy(update={"detector": detector})
