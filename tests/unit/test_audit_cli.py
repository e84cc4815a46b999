"""``veil audit verify | show`` on a real log file, and the service's ``config.loaded`` records."""

from __future__ import annotations

import json

import pytest

from daemon.audit.log import AuditLog
from daemon.audit.trail import record_config_loaded
from daemon.cli import main as veil


@pytest.fixture
def log(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    for actor in ("ann", "bob", "cid", "dee"):
        audit.append("drift_acknowledged", actor=actor, source="cam")
    return audit


def _edit(audit: AuditLog, index: int, **changes) -> None:
    lines = audit.path.read_text().splitlines()
    record = json.loads(lines[index])
    record.update(changes)
    lines[index] = json.dumps(record, sort_keys=True)
    audit.path.write_text("\n".join(lines) + "\n")


def test_verify_says_ok_with_the_record_count(log, capsys):
    assert veil(["audit", "verify", "--log", str(log.path)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {log.path}: 4 records")


@pytest.mark.parametrize("index, reported", [(0, "2"), (2, "4"), (3, "4")])  # the last line: caught by the head
def test_verify_reports_where_an_edited_line_breaks_the_chain(log, capsys, index, reported):
    _edit(log, index, actor="mallory")
    assert veil(["audit", "verify", "--log", str(log.path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("BROKEN") and out.rstrip().endswith(f"line(s) {reported}")


def test_a_dropped_last_line_is_caught_too(log, capsys):
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join(lines[:-1]) + "\n")
    assert veil(["audit", "verify", "--log", str(log.path)]) == 1
    assert "line(s) 3" in capsys.readouterr().out


def test_a_missing_log_is_not_reported_as_intact(tmp_path, capsys):
    assert veil(["audit", "verify", "--log", str(tmp_path / "none.jsonl")]) == 2
    assert "no audit log" in capsys.readouterr().out


def test_show_prints_the_last_events(log, capsys):
    assert veil(["audit", "show", "--log", str(log.path), "-n", "2"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["actor"] for r in shown] == ["cid", "dee"]


def test_config_loaded_is_recorded_only_when_the_file_changed(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    config = tmp_path / "veil.toml"
    config.write_text("[service]\nworkers = 1\n")
    assert record_config_loaded(audit, None) is None  # a trial run has no file
    first = record_config_loaded(audit, config)
    assert first is not None and first["event"] == "config.loaded" and first["path"] == str(config)
    assert record_config_loaded(audit, config) is None  # a reload of the same file: nothing new
    config.write_text("[service]\nworkers = 2\n")
    second = record_config_loaded(audit, config)
    assert second is not None and second["sha256"] != first["sha256"]
    assert [r["event"] for r in audit.records()] == ["config.loaded", "config.loaded"] and audit.verify() == []
