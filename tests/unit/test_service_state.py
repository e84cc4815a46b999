"""Where a service keeps its state and what ``veil status`` says about it: a clean stop reads "stopped"."""

from __future__ import annotations

import json

from daemon import cmd_status
from daemon.status import read_statuses
from tests.unit.test_daemon_service import make_service


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

    from daemon.settings import load_settings, trial_folder

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Try it first", 1)[1].split("\n### ", 1)[0]
    two_commands = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    settings = load_settings(None, folders=[trial_folder(Path("/tmp/veil/in"), Path("/tmp/veil/out"), None, None)])
    for path in settings.folders[0].destinations():
        assert f"`{path}`" in section, path
        assert f"`~/veil/{path.name}`" in two_commands or path.name == "out", path
