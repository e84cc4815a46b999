"""Model lifecycle with real ONNX files: add (contract checked by loading), verify, the activation gate on a
real control set, the audit trail, the drift re-baseline, and a running service swapping models on SIGHUP.

Candidates are cheap edits of the default CenterFace file: a byte-different copy that detects exactly the
same (metadata added), and a worse one whose heatmap scores are scaled down to a tenth (below every review
floor, so it finds no face at all).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import structlog
from onnx import helper, numpy_helper

from pipeline.detect.catalogue import default_model_dir, sha256_of

from daemon.audit.log import AuditLog
from daemon.cli import main as veil
from daemon.models.registry import Registry

from tests.conftest import eval_set, require_models
from tests.integration.serve_harness import assert_each_once, video_in_flight, wait_for, write_image, write_video

MODELS = Path(sys.prefix) / "share" / "veil" / "models"
@pytest.fixture(autouse=True)
def _models_installed():
    require_models()


@pytest.fixture(autouse=True)
def _logging_restored():
    """`veil models` points logging at the stderr of the moment, here capsys's: later tests must not log there."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def centerface_copy(dst: Path, *, heatmap_factor: float | None = None) -> Path:
    """The default CenterFace, made byte-different; with ``heatmap_factor``, its face scores scaled by it."""
    model = onnx.load(str(default_model_dir() / "centerface.onnx"))
    model.metadata_props.append(onnx.StringStringEntryProto(key="veil_test", value=dst.name))
    if heatmap_factor is not None:
        graph = model.graph
        heat = graph.output[0].name
        for node in graph.node:
            node.output[:] = [f"{heat}_raw" if o == heat else o for o in node.output]
            node.input[:] = [f"{heat}_raw" if i == heat else i for i in node.input]
        graph.initializer.append(numpy_helper.from_array(np.array(heatmap_factor, dtype=np.float32), f"{heat}_factor"))
        graph.node.append(helper.make_node("Mul", [f"{heat}_raw", f"{heat}_factor"], [heat]))
    onnx.save(model, str(dst))
    return dst


class Lab:
    """A model directory (the two defaults), a configuration pointing at it, and its audit log."""

    def __init__(self, root: Path, control_set: Path | None = None) -> None:
        self.root = root
        self.models = root / "models"
        self.models.mkdir()
        shutil.copy(default_model_dir() / "centerface.onnx", self.models)
        (self.models / "platedet.onnx").symlink_to(default_model_dir() / "platedet.onnx")
        self.store = root / "store"
        control = f'[models]\ncontrol_set = "{control_set}"\n' if control_set else ""
        self.config = root / "veil.toml"
        self.config.write_text(f"""
[service]
state_dir = "{root / 'state'}"
model_dir = "{self.models}"
[drift]
store_dir = "{self.store}"
{control}
[[folders]]
ingest = "{root / 'in'}"
output = "{root / 'out'}"
""")
        self.audit = AuditLog(self.store / "audit.jsonl")

    def veil(self, capsys, *argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = veil(["models", *argv, "--config", str(self.config)])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    def events(self, name: str) -> list[dict]:
        return [r for r in self.audit.records() if r["event"] == name]


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


def test_add_copies_the_model_in_and_verify_catches_a_tampered_or_missing_file(lab, capsys, tmp_path):
    source = centerface_copy(tmp_path / "mine.onnx")
    code, out = lab.veil(capsys, "add", "myface", "--file", str(source), "--family", "centerface",
                         "--classes", "face", "--license", "MIT (test copy)")
    assert code == 0, out
    model = Registry(lab.models).get("myface")
    assert model.sha256 == sha256_of(source) != sha256_of(default_model_dir() / "centerface.onnx")
    assert (lab.models / model.file).is_file() and model.file.startswith("myface-")
    assert model.classes == ("face",) and model.license == "MIT (test copy)" and model.added_at is not None
    [added] = lab.events("model.add")
    assert added["name"] == "myface" and added["sha256"] == model.sha256 and lab.audit.verify() == []

    code, out = lab.veil(capsys, "list")
    assert code == 0 and "myface  [ok]" in out and "centerface  [ok]  ACTIVE for face" in out
    code, out = lab.veil(capsys, "verify")
    assert code == 0 and "3 of 3 model(s) ok" in out

    with open(lab.models / model.file, "r+b") as handle:  # one byte flipped in place: same size, other content
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    code, out = lab.veil(capsys, "verify")
    assert code == 1 and "myface: checksum mismatch" in out and "centerface: ok" in out
    code, out = lab.veil(capsys, "verify", "centerface")
    assert code == 0
    (lab.models / "platedet.onnx").unlink()
    code, out = lab.veil(capsys, "verify", "platedet")
    assert code == 1 and "platedet: missing" in out


@pytest.mark.parametrize("case, argv, message", [
    ("not onnx", ["--family", "centerface", "--classes", "face"], "cannot read model"),
    ("centerface", ["--family", "yolov8", "--classes", "license_plate"], "YOLO contract"),
    ("platedet", ["--family", "yolov8", "--classes", "license_plate", "--input-size", "320"], "takes 640x640"),
    ("centerface", ["--family", "centerface", "--classes", "face,cat"], "--classes"),
    ("centerface", ["--family", "centerface", "--classes", "face", "--input-size", "640"], "fully convolutional"),
    ("centerface", ["--family", "centerface", "--classes", "face"], "already registered"),  # the name is taken
])
def test_add_refuses_a_file_that_does_not_keep_its_contract(lab, capsys, tmp_path, case, argv, message):
    source = tmp_path / "candidate.onnx"
    if case == "not onnx":
        source.write_bytes(b"\x08\x07 this is not a protobuf" * 100)
    else:
        shutil.copy(default_model_dir() / f"{case}.onnx", source)
    name = "centerface" if message == "already registered" else "candidate"
    before = sorted(p.name for p in lab.models.iterdir())
    code, out = lab.veil(capsys, "add", name, "--file", str(source), *argv, "--license", "test")
    assert code == 1 and message in out
    assert sorted(p.name for p in lab.models.iterdir()) == before, "a refused model left a file behind"
    assert [m.name for m in Registry(lab.models).models()] == ["centerface", "platedet"]
    assert lab.events("model.add") == []


def test_a_yolo_model_is_recorded_with_the_input_size_of_its_file(lab, capsys, tmp_path):
    source = tmp_path / "plates.onnx"
    shutil.copy(default_model_dir() / "platedet.onnx", source)
    code, out = lab.veil(capsys, "add", "bad name", "--file", str(source), "--family", "yolov8",
                         "--classes", "license_plate", "--license", "AGPL-3.0")
    assert code == 1 and "letters, digits" in out
    code, out = lab.veil(capsys, "add", "plates2", "--file", str(source), "--family", "yolov8",
                         "--classes", "license_plate", "--license", "AGPL-3.0")
    assert code == 0, out
    assert Registry(lab.models).get("plates2").input_size == 640


def test_an_activation_that_cannot_be_audited_does_not_happen(lab, capsys):
    lab.audit.path.mkdir(parents=True)  # a directory where the log should be: appending fails
    code, out = lab.veil(capsys, "activate", "centerface", "--force", "--reason", "no audit")
    assert code == 1 and "audit.jsonl" in out
    assert not (lab.models / "active.json").exists()


def _drift_store_with_a_source(store_dir: Path) -> None:
    from daemon.drift.schema import FEATURES
    from daemon.drift.store import DriftStore, Observation

    store = DriftStore(store_dir / "drift.sqlite", instance="test")
    values = {f.name: 1.0 for f in FEATURES}
    store.add("entrance", [Observation(1.0e9, values, {"resolution": "640x480"}, "m1")])
    store.close()


def small_control_set(root: Path, images: int = 2) -> Path:
    """The first few images of a development set, in the control-set layout (annotations.json, images/)."""
    source = eval_set("dlib_faces_voc")
    gt = json.loads((source / "annotations.json").read_text())
    keep = gt["images"][:images]
    ids = {image["id"] for image in keep}
    gt.update(images=keep, annotations=[a for a in gt["annotations"] if a["image_id"] in ids])
    root.mkdir()
    (root / "annotations.json").write_text(json.dumps(gt))
    (root / "images").symlink_to(source / "images")
    return root


def test_activation_gates_on_mask_recall_and_audits_a_forced_one(tmp_path, capsys):
    lab = Lab(tmp_path, control_set=small_control_set(tmp_path / "control"))
    _drift_store_with_a_source(lab.store)
    for name, factor in (("same", None), ("worse", 0.1)):
        source = centerface_copy(tmp_path / f"{name}.onnx", heatmap_factor=factor)
        code, out = lab.veil(capsys, "add", name, "--file", str(source), "--family", "centerface", "--classes", "face",
                             "--license", "MIT")
        assert code == 0, out

    # A byte-different model that detects the same: equal recall passes without --force.
    code, out = lab.veil(capsys, "activate", "same")
    assert code == 0, out
    [first] = lab.events("model.activate")
    assert first["active"]["name"] == "centerface" and first["candidate"]["name"] == "same"
    assert first["candidate_mask_recall"] == first["active_mask_recall"] > 0.5
    assert first["gate"] == "passed" and first["forced"] is False and first["control_boxes"] == 10
    assert Registry(lab.models).selection().tasks["face"].sha256 == sha256_of(tmp_path / "same.onnx")
    [scheduled] = lab.events("drift_rebaseline_scheduled")
    assert scheduled["source"] == "entrance"

    # A worse one is refused: the selection stays, the refusal is audited with both recalls.
    code, out = lab.veil(capsys, "activate", "worse")
    assert code == 1 and "below same's" in out
    [refused] = lab.events("model.activate_refused")
    assert refused["candidate_mask_recall"] < refused["active_mask_recall"] and refused["gate"] == "failed"
    assert Registry(lab.models).selection().tasks["face"].name == "same"

    # Forcing needs a reason, and is audited as forced.
    code, out = lab.veil(capsys, "activate", "worse", "--force")
    assert code == 1 and "--reason" in out
    code, out = lab.veil(capsys, "activate", "worse", "--force", "--reason", "vendor-mandated model")
    assert code == 0, out
    forced = lab.events("model.activate")[-1]
    assert forced["forced"] is True and forced["gate"] == "failed" and forced["reason"] == "vendor-mandated model"
    assert forced["candidate_mask_recall"] == 0.0 and forced["actor"]
    assert Registry(lab.models).selection().tasks["face"].name == "worse"
    assert len(lab.events("drift_rebaseline_scheduled")) == 2 and lab.audit.verify() == []
    code, out = lab.veil(capsys, "list")
    assert "worse  [ok]  ACTIVE for face" in out


def test_sighup_swaps_the_model_without_losing_a_job(tmp_path, daemons, capsys):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(default_model_dir() / "centerface.onnx", models)
    daemon = daemons(tmp_path, stop_timeout_s=60.0)
    daemon.start(env={"VEIL_SERVICE__MODEL_DIR": str(models)}).wait_ready()
    old = sha256_of(models / "centerface.onnx")
    new_source = centerface_copy(tmp_path / "swap.onnx")
    cli = ["--config", str(daemon.config), "--model-dir", str(models)]
    assert veil(["models", "add", "swap", "--file", str(new_source), "--family", "centerface", "--classes", "face",
                 "--license", "MIT", *cli]) == 0
    new = sha256_of(new_source)

    before = [f"before{i}.jpg" for i in range(8)]
    for i, name in enumerate(before):
        write_image(daemon.ingest / name, i, size=(640, 480))
    wait_for(lambda: daemon.finished() >= 1, 120, "the first file")
    assert veil(["models", "activate", "swap", *cli]) == 1  # no control set configured: only --force may
    assert veil(["models", "activate", "swap", "--force", "--reason", "test swap", *cli]) == 0
    daemon.config.write_text(daemon.config.read_text() + "\n# edited: a configuration change is audited\n")
    # The photos may all be done by now (the commands above load models, slowly on a busy machine), and a
    # photo's job is shorter than the status file's period: a clip of 300 frames is surely seen in flight.
    write_video(daemon.ingest / "during.mp4", seconds=30, seed=5)
    before.append("during.mp4")
    wait_for(lambda: video_in_flight(daemon, "during.mp4", min_s=0.0), 60, "a job in flight")
    daemon.proc.send_signal(signal.SIGHUP)  # while a file is running and others wait
    wait_for(lambda: daemon.events("reloaded"), 120, "the reload")
    after = ["after0.jpg", "after1.jpg"]
    for i, name in enumerate(after):
        write_image(daemon.ingest / name, 100 + i, size=(640, 480))
    wait_for(lambda: daemon.finished() >= len(before) + len(after), 180, "every file")
    assert daemon.stop() == 0

    reports = assert_each_once(daemon, before + after)  # nothing lost, nothing twice
    face_sha = {name: next(m.sha256 for m in r.models if m.task == "face") for name, r in reports.items()}
    assert all(face_sha[name] == new for name in after), "a file after the reload used the old model"
    assert set(face_sha.values()) == {old, new}
    assert all(r.disposition in ("done", "review") for r in reports.values())
    audit = AuditLog(daemon.state / "audit.jsonl")
    # the start's config.loaded, the operator's commands (the service's drift source gets a new reference),
    # and the edited file at the reload
    assert [r["event"] for r in audit.records()] == [
        "config.loaded", "model.add", "model.activate", "drift_rebaseline_scheduled", "config.loaded"]
    activation = audit.records()[2]
    assert activation["gate"] == "not measured" and activation["forced"] is True and activation["reason"] == "test swap"
    assert audit.verify() == []


def test_a_reload_whose_active_model_does_not_load_keeps_the_running_models(tmp_path, daemons):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(default_model_dir() / "centerface.onnx", models)
    daemon = daemons(tmp_path)
    daemon.start(env={"VEIL_SERVICE__MODEL_DIR": str(models)}).wait_ready()
    cli = ["--config", str(daemon.config), "--model-dir", str(models)]
    assert veil(["models", "add", "swap", "--file", str(centerface_copy(tmp_path / "swap.onnx")), "--family",
                 "centerface", "--classes", "face", "--license", "MIT", *cli]) == 0
    assert veil(["models", "activate", "swap", "--force", "--reason", "test", *cli]) == 0
    swapped = models / Registry(models).get("swap").file
    swapped.write_bytes(swapped.read_bytes()[:-1] + b"\0")  # damaged after its activation: its pin no longer holds

    daemon.proc.send_signal(signal.SIGHUP)
    [failed] = wait_for(lambda: daemon.events("reload_failed"), 120, "the failed reload")
    assert "checksum mismatch" in failed["error"]
    wait_for(lambda: daemon.events("reloaded"), 120, "the service back on its models")
    write_image(daemon.ingest / "after.jpg", 7, size=(320, 240))
    wait_for(lambda: daemon.finished() >= 1, 120, "a file after the failed reload")
    assert daemon.stop() == 0
    report = assert_each_once(daemon, ["after.jpg"])["after.jpg"]
    assert [m.sha256 for m in report.models] == [sha256_of(models / "centerface.onnx")]
