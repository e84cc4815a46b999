"""Where a service keeps its state and what ``veil status`` says about it: a clean stop reads "stopped"."""

from __future__ import annotations

import json

import pytest
import structlog

from daemon.cli import status as cmd_status
from daemon.service.status import read_statuses

from tests.unit.test_daemon_service import make_service


@pytest.fixture(autouse=True)
def _logging_restored():
    """cli.main configures logging onto the sys.stderr of the moment, pytest's capture here, closed after
    the test: later tests that log (the pool's) would write to a closed file."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_a_clean_stop_is_reported_as_stopped_with_when(tmp_path, monkeypatch):
    service = make_service(tmp_path)
    monkeypatch.setattr(service, "install_signal_handlers", lambda: None)
    service._stop = True  # as if SIGTERM came at once: start, then stop cleanly
    assert service.run() == 0
    snapshot = json.loads((tmp_path / "state" / "status-t.json").read_text())
    assert snapshot["state"] == "stopped" and snapshot["stopped_at"]
    [status] = read_statuses(tmp_path / "state")
    status["running"] = False  # this test's own process is the pid in it
    first = cmd_status._render(status).splitlines()[0]
    assert f"stopped at {snapshot['stopped_at']}" in first and "stopping" not in first


def test_a_service_that_vanished_is_not_called_stopped(tmp_path):
    status = {"instance": "t", "pid": 1, "state": "running", "started_at": "s", "updated_at": "u", "running": False,
              "queue": {"claimed": 0, "complete_in_ingest": 0, "waiting_to_settle": 0},
              "counts": {"done": 0, "review": 0, "failed": 0, "duplicate": 0, "retried": 0},
              "throughput": {"files_last_minute": 0, "files_per_minute_10m": 0}, "workers": [],
              "worker_restarts": 0, "in_flight": [], "last_errors": []}
    assert "without a clean stop (last state: running)" in cmd_status._render(status)


def test_the_readme_names_every_folder_a_trial_creates():
    from pathlib import Path

    from daemon.config.settings import load_settings, trial_folder

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    operations = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = operations.split("## Try it first", 1)[1].split("\n## ", 1)[0]
    two_commands = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    settings = load_settings(None, folders=[trial_folder(Path("/tmp/veil/in"), Path("/tmp/veil/out"), None, None)])
    for path in settings.folders[0].destinations():
        assert f"`{path}`" in section, path
        assert f"`~/veil/{path.name}`" in two_commands or path.name == "out", path


def _trial(*argv: str):
    from daemon import cli
    from daemon.cli import serve as cmd_serve

    return cmd_serve.load_for(cli.build_parser().parse_args(["serve", *argv]))[2]


def test_two_trials_keep_their_state_apart_under_their_output(tmp_path, monkeypatch):
    from daemon.audit.trail import audit_path

    for name in ("RUNTIME_DIRECTORY", "STATE_DIRECTORY", "VEIL_CONFIG", "VEIL_SERVICE__STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    first = _trial("--ingest", str(tmp_path / "a" / "in"), "--output", str(tmp_path / "a" / "out"))
    second = _trial("--ingest", str(tmp_path / "b" / "in"), "--output", str(tmp_path / "b" / "out"))
    for settings, root in ((first, tmp_path / "a"), (second, tmp_path / "b")):
        state = root / ".veil-state"
        assert settings.service.resolved_state_dir() == state
        assert settings.drift.resolved_store_dir(settings.service) == state
        assert audit_path(settings).parent == state
    monkeypatch.setenv("VEIL_SERVICE__STATE_DIR", str(tmp_path / "chosen"))  # an explicit choice still wins
    chosen = _trial("--ingest", str(tmp_path / "a" / "in"), "--output", str(tmp_path / "a" / "out"))
    assert chosen.service.resolved_state_dir() == tmp_path / "chosen"


def test_status_reads_a_trials_state_given_its_output(tmp_path, capsys):
    from daemon import cli
    from daemon.service.status import write_status

    service = make_service(tmp_path)
    service._write_status()
    snapshot = json.loads((tmp_path / "state" / "status-t.json").read_text())
    write_status(tmp_path / ".veil-state" / "status-t.json", {**snapshot, "instance": "trial-a"})
    cli.main(["status", "--output", str(tmp_path / "out")])
    assert capsys.readouterr().out.startswith("instance trial-a ")


def test_review_opens_a_trials_folders_without_a_configuration(tmp_path, monkeypatch, capsys):
    from daemon import cli
    from daemon.review import server

    seen = []

    def no_listening(address, app):
        seen.append(app)
        raise OSError(98, "Address already in use")

    monkeypatch.delenv("VEIL_CONFIG", raising=False)
    monkeypatch.setattr(server, "ReviewServer", no_listening)
    code = cli.main(["review", "--ingest", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--port", "0"])
    assert code == 1 and "cannot listen" in capsys.readouterr().err  # it got as far as listening
    [app] = seen
    [folder] = app.settings.folders
    assert folder.output == tmp_path / "out" and folder.review_dir == tmp_path / "review"
    assert app.settings.service.resolved_state_dir() == tmp_path / ".veil-state"
