"""The registry's files and the active selection as the service applies it (plumbing: no ONNX is loaded here;
tests/integration/test_model_lifecycle.py loads, gates and swaps real models)."""

from __future__ import annotations

import pytest

from pipeline.params import DetectorParams, ModelSpec, Params
from pipeline.records import ObjectClass

from daemon.config.settings import load_settings, trial_folder
from daemon.models.registry import ACTIVE_NAME, RegisteredModel, Registry, RegistryError, with_active_models
from daemon.service.lifecycle import Service, StartupError

FACE, PLATE = ObjectClass.FACE, ObjectClass.LICENSE_PLATE


def _model(name: str, classes=("face",), family="centerface") -> RegisteredModel:
    return RegisteredModel(name=name, family=family, classes=classes, license="MIT", source="test",
                           file=f"{name}-0123456789ab.onnx", sha256="ab" * 32)


def test_no_selection_means_the_defaults_and_the_defaults_are_always_registered(tmp_path):
    registry = Registry(tmp_path)
    assert registry.selection().tasks == {}
    assert [m.name for m in registry.models()] == ["centerface", "platedet"]
    assert registry.active("face").name == "centerface" and registry.active("license_plate").name == "platedet"
    assert registry.state(registry.get("centerface")) == "missing"
    with pytest.raises(RegistryError, match="no model named"):
        registry.get("nope")


def test_a_model_serves_only_a_task_it_declares(tmp_path):
    with pytest.raises(RegistryError, match="does not declare"):
        Registry(tmp_path).set_active("license_plate", _model("faces"))
    assert not (tmp_path / ACTIVE_NAME).exists()


def test_the_active_model_replaces_the_default_in_every_profile_that_uses_the_default(tmp_path):
    registry = Registry(tmp_path)
    selection = registry.set_active("face", _model("newface"))
    assert Registry(tmp_path).selection() == selection  # written, and read back the same
    own = ModelSpec(name="mine", family="centerface", classes=("face",))
    profiles = {"default": Params(), "own": Params(detector=DetectorParams().with_model(FACE, own))}
    applied = {name: with_active_models(p, selection, tmp_path) for name, p in profiles.items()}
    face = applied["default"].detector.for_class(FACE).model
    assert (face.name, face.path, face.sha256) == ("newface", tmp_path / "newface-0123456789ab.onnx", "ab" * 32)
    assert applied["default"].detector.for_class(PLATE) == DetectorParams().for_class(PLATE)  # none activated
    assert applied["own"].detector.for_class(FACE).model == own  # a profile's own choice is kept
    # what the workers receive survives the JSON hop
    assert Params.model_validate_json(applied["default"].model_dump_json()) == applied["default"]


def test_an_unreadable_selection_stops_the_service_at_start(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / ACTIVE_NAME).write_text('{"version": 1, "tasks": {"face": {"name": "x"}}}')  # fields missing
    settings = load_settings(None, folders=[trial_folder(tmp_path / "in", tmp_path / "out", None, None)],
                             service={"instance": "t", "state_dir": tmp_path / "state", "model_dir": models})
    with pytest.raises(StartupError, match="active models"):
        Service(settings).start_internals()
    assert not (tmp_path / "in").exists(), "nothing was started or locked"
