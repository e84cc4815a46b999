"""Camera zones in the configuration: checked at load (ignore zones only when allowed), turned into the
pipeline's edits, handed to each job by the service, and audited at start and on a reload that changes them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipeline.edits import AddRegion, Suppression
from pipeline.qc import QCReport

from daemon.audit.log import AuditLog
from daemon.config.settings import ConfigError, load_settings, trial_folder
from daemon.intake.zones import NO_ZONES, ZONES_CONFIGURED, record_zones, zone_edits, zones_audit_log, zones_digest
from daemon.service.lifecycle import Service

DOOR = {"name": "door", "kind": "always_mask", "polygon": [[0.0, 0.5], [0.2, 0.5], [0.2, 1.0], [0.0, 1.0]]}
TV = {"name": "tv", "kind": "ignore", "polygon": [[0.6, 0.1], [0.9, 0.1], [0.9, 0.4]]}


def folder(tmp_path: Path, name: str = "cams", **extra) -> dict:
    return {"name": name, "ingest": tmp_path / name / "in", "output": tmp_path / name / "out", **extra}


def write_config(tmp_path: Path, folder_toml: str) -> Path:
    path = tmp_path / "veil.toml"
    path.write_text(f'[[folders]]\nname = "cams"\ningest = "{tmp_path}/in"\noutput = "{tmp_path}/out"\n{folder_toml}')
    return path


def test_an_ignore_zone_without_the_explicit_setting_is_refused_at_load(tmp_path):
    config = write_config(tmp_path, 'zones = [{ name = "tv", kind = "ignore", polygon = [[0.6, 0.1], [0.9, 0.1], [0.9, 0.4]] }]\n')
    with pytest.raises(ConfigError, match=r"folders\[0\].*ignore zone\(s\) \['tv'\].*allow_ignore_zones = true"):
        load_settings(config)
    allowed = write_config(tmp_path, "allow_ignore_zones = true\n" + config.read_text().splitlines()[-1] + "\n")
    assert load_settings(allowed).folders[0].zones[0].kind == "ignore"


@pytest.mark.parametrize(
    "zone, message",
    [
        ({**DOOR, "polygon": [[0.1, 0.1], [0.2, 0.2]]}, "at least 3 points"),
        ({**DOOR, "polygon": [[0.1, 0.1], [1.2, 0.1], [0.5, 0.5]]}, "outside the picture"),
        ({**DOOR, "kind": "blur"}, "kind"),
        ({**DOOR, "name": "front door"}, "name"),
        ({**DOOR, "frames": [1, 2]}, "frames"),  # zones hold for every frame: no frame ranges here
    ],
)
def test_bad_zones_are_refused_with_the_key_named(tmp_path, zone, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(None, folders=[folder(tmp_path, zones=[zone])])


def test_zone_names_are_unique_within_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="zone names must be unique"):
        load_settings(None, folders=[folder(tmp_path, zones=[DOOR, DOOR])])


def test_zones_become_edits_in_order_with_their_origin(tmp_path):
    settings = load_settings(None, folders=[folder(tmp_path, zones=[TV, DOOR], allow_ignore_zones=True)])
    edits = zone_edits(settings.folders[0])
    assert edits.add == (AddRegion(tuple(map(tuple, DOOR["polygon"])), origin="zone:door"),)
    assert edits.suppress == (Suppression(tuple(map(tuple, TV["polygon"])), origin="ignore-zone:tv"),)
    assert zone_edits(load_settings(None, folders=[folder(tmp_path)]).folders[0]).is_empty()


def _events(log: AuditLog) -> list[tuple[str, int, str]]:
    return [(r["folder"], r["zones"], r["sha256"]) for r in log.records() if r["event"] == ZONES_CONFIGURED]


def test_zones_are_audited_at_start_and_when_a_reload_changes_them(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    load = lambda *folders: load_settings(None, folders=list(folders)).folders
    start = load(folder(tmp_path, "cams", zones=[DOOR]), folder(tmp_path, "plain"))
    known = record_zones(log, start, None)
    assert _events(log) == [("cams", 1, zones_digest(start[0]))]  # a folder without zones is not news at start

    assert record_zones(log, start, known) == known and len(_events(log)) == 1  # reload, nothing changed

    changed = load(folder(tmp_path, "cams", zones=[DOOR, TV], allow_ignore_zones=True), folder(tmp_path, "plain", zones=[DOOR]))
    known = record_zones(log, changed, known)
    assert _events(log)[1:] == [("cams", 2, zones_digest(changed[0])), ("plain", 1, zones_digest(changed[1]))]
    assert zones_digest(changed[0]) != zones_digest(start[0])

    record_zones(log, load(folder(tmp_path, "plain")), known)  # zones removed, and a folder gone
    assert sorted(_events(log)[3:]) == [("cams", 0, NO_ZONES), ("plain", 0, NO_ZONES)]
    assert log.verify() == []
    text = log.path.read_text()
    assert "0.9" not in text and "polygon" not in text  # a hash and a count, never the zones themselves


# -- the service hands each job its folder's zones -----------------------------------------------------------

RUNNER = f"{__name__}:EditsEchoRunner"


class EditsEchoRunner:
    """Stands in for the pipeline: copies the input and reports the edits the job carried."""

    def __init__(self, spec) -> None:
        pass

    def run(self, job):
        from datetime import datetime, timezone

        from pipeline.qc import FileInfo

        Path(job.dst).write_bytes(Path(job.src).read_bytes())
        return QCReport(veil_version="t", created_at=datetime.now(timezone.utc), input=FileInfo(name=job.name),
                        output=FileInfo(name=job.name), edits=job.edits.summary() if job.edits else [])


def test_the_service_passes_the_folder_zones_to_each_job_and_audits_them(tmp_path):
    overrides = {
        "folders": [{**trial_folder(tmp_path / "in", tmp_path / "out", None, None), "zones": [DOOR]}],
        "watch": {"settle_s": 0.0, "mode": "poll", "poll_interval_s": 0.2},
        "service": {"instance": "t", "workers": 1, "state_dir": tmp_path / "state", "heartbeat_timeout_s": 30},
    }
    service = Service(load_settings(None, **overrides), overrides=overrides, runner=RUNNER)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"a")
    service.start_internals()
    try:
        deadline = time.monotonic() + 60
        while service.counters.done < 1:
            assert time.monotonic() < deadline, "deadline passed"
            service.step()
        sidecar = json.loads((tmp_path / "out" / "a.jpg.veil.json").read_text())
        assert [(e["kind"], e["origin"]) for e in sidecar["edits"]] == [("add", "zone:door")]

        overrides["folders"][0]["zones"] = [DOOR, TV]  # the operator edits the zones and reloads
        overrides["folders"][0]["allow_ignore_zones"] = True
        service._do_reload()
    finally:
        service.stop_internals(5)
    log = zones_audit_log(service.settings)
    assert [(f, n) for f, n, _ in _events(log)] == [("default", 1), ("default", 2)]


def test_the_readme_example_loads_and_matches_its_sidecar_listing(tmp_path):
    section = (Path(__file__).resolve().parents[2] / "docs" / "zones.md").read_text()
    toml_block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    json_block = section.split("```json\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "veil.toml"
    config.write_text(toml_block)
    edits = zone_edits(load_settings(config).folders[0])
    listed = json.loads("{" + json_block + "}")["edits"]
    assert [(e["kind"], e["origin"], e["polygon"]) for e in edits.summary()] == [
        (e["kind"], e["origin"], e["polygon"]) for e in listed]
    config.write_text(toml_block.replace("allow_ignore_zones = true", ""))
    with pytest.raises(ConfigError, match="allow_ignore_zones"):
        load_settings(config)
