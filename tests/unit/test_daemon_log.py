"""Logs: structured fields to the journal (when systemd connected stderr), JSON lines otherwise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import log

REPO = Path(__file__).resolve().parents[2]


def test_json_lines_on_stderr_without_file_names(capsys):
    log.configure("info", log_file_names=False, journal=False)
    log.get().info("job_finished", job="abc", folder="cams", **log.name_field("secret/person.jpg"))
    event = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert event["event"] == "job_finished" and event["job"] == "abc" and event["level"] == "info"
    assert "file" not in event and "person" not in json.dumps(event)


def test_file_names_only_when_allowed(capsys):
    log.configure("info", log_file_names=True, journal=False)
    log.get().info("job_finished", **log.name_field("a.jpg"))
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["file"] == "a.jpg"
    log.configure("info", log_file_names=False, journal=False)


def test_journal_fields(monkeypatch):
    journal = pytest.importorskip("systemd.journal")
    sent = []
    monkeypatch.setattr(journal, "send", lambda message, **fields: sent.append((message, fields)))
    log.configure("info", journal=True)
    log.get().warning("worker_replaced", worker=1, reason="exited")
    log.configure("info", journal=False)
    [(message, fields)] = sent
    assert message == "worker_replaced"
    assert fields["PRIORITY"] == 4 and fields["SYSLOG_IDENTIFIER"] == "veil"
    assert fields["VEIL_WORKER"] == "1" and fields["VEIL_REASON"] == "exited"


def test_journal_is_used_only_when_stderr_is_the_journal_stream():
    code = "import os,sys; from daemon import log; print(log._stderr_is_journal())"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                           env={"JOURNAL_STREAM": "1:2", "PATH": "/usr/bin"})
    assert plain.stdout.strip() == "False"  # a stale variable inherited from elsewhere is not enough


def _finished(**extra):
    log.get().info("job_finished", job="j1", folder="cams", disposition="failed", duplicate=False, seconds=1.234,
                   attempts=3, error_kind="input", **extra)


def test_a_terminal_gets_readable_lines_without_file_names_unless_allowed(capsys):
    log.configure("info", log_file_names=False, journal=False, terminal=True)
    _finished(**log.name_field("secret/person.jpg"))
    log.get().warning("worker_replaced", worker=1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d  job j1  failed  input  1\.234 s", lines[-2])
    assert re.fullmatch(r"\d\d:\d\d:\d\d  warning worker_replaced  worker=1", lines[-1])
    assert "person" not in "".join(lines)
    log.configure("info", log_file_names=True, journal=False, terminal=True)
    _finished(error="unrecognised content", **log.name_field("a.jpg"))
    assert capsys.readouterr().err.strip().endswith("  a.jpg  failed  input: unrecognised content  1.234 s")
    log.configure("info", log_file_names=False, journal=False)


def test_piped_output_stays_json(capsys):
    log.configure("info", journal=False)  # capsys's stderr is not a terminal
    _finished()
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["disposition"] == "failed"


def test_a_terminal_under_journald_keeps_the_fields(monkeypatch):
    journal = pytest.importorskip("systemd.journal")
    sent = []
    monkeypatch.setattr(journal, "send", lambda message, **fields: sent.append((message, fields)))
    log.configure("info", journal=True, terminal=True)
    _finished()
    log.configure("info", journal=False)
    [(message, fields)] = sent
    assert message == "job_finished" and fields["VEIL_DISPOSITION"] == "failed"
