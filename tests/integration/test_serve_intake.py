"""How `veil serve` takes files from ingest: only once complete (slow copies, ``.part`` names), by done
markers in poll mode, and kept originals never processed twice (a changed file under the same name is new)."""

from __future__ import annotations

import time

import pytest

from tests.integration.serve_harness import assert_each_once, files, sidecars, wait_for, write_image

pytestmark = pytest.mark.usefixtures("models_installed")


def test_files_copied_slowly_are_taken_only_when_complete(tmp_path, daemons):
    daemon = daemons(tmp_path, settle_s=3.0).start().wait_ready()
    source = tmp_path / "src.jpg"
    write_image(source, 1, size=(320, 240))
    data = source.read_bytes()
    chunks = [data[i: i + len(data) // 6 + 1] for i in range(0, len(data), len(data) // 6 + 1)]
    target = daemon.ingest / "slow.jpg"
    partial = daemon.ingest / "other.jpg.part"
    for chunk in chunks:
        with target.open("ab") as a, partial.open("ab") as b:
            a.write(chunk)
            b.write(chunk)
        assert target.exists() and partial.exists(), "taken while still being written"
        time.sleep(0.3)  # the slow writer itself (well under settle_s between chunks), not a synchronisation
    assert target.read_bytes() == data
    wait_for(lambda: daemon.finished() == 1, 60, "the slow file")
    assert partial.exists(), "a .part file was taken"
    partial.rename(daemon.ingest / "other.jpg")  # the writer's final rename
    wait_for(lambda: daemon.finished() == 2, 60, "the renamed file")
    assert daemon.stop() == 0
    reports = assert_each_once(daemon, ["slow.jpg", "other.jpg"])
    assert all(r.disposition in ("done", "review") for r in reports.values())
    assert all(r.input.size_bytes == len(data) for r in reports.values())  # complete, not a prefix


def test_poll_mode_with_done_markers_and_no_file_names_in_logs(tmp_path, daemons):
    extra = 'mode = "poll"\npoll_interval_s = 0.3\ndone_marker = ".done"'
    daemon = daemons(tmp_path, extra=extra, log_file_names=False).start().wait_ready()
    write_image(daemon.ingest / "waiting-for-marker.jpg", 1)
    write_image(daemon.ingest / "marked.jpg", 2)
    (daemon.ingest / "marked.jpg.done").write_bytes(b"")
    wait_for(lambda: daemon.finished() == 1, 60, "the marked file")
    # Every scan that found marked.jpg's marker also saw the older file: without its marker it stays.
    assert (daemon.ingest / "waiting-for-marker.jpg").exists()
    assert not (daemon.ingest / "marked.jpg.done").exists()  # the marker goes with its file
    (daemon.ingest / "waiting-for-marker.jpg.done").write_bytes(b"")
    wait_for(lambda: daemon.finished() == 2, 60, "the second file")
    status_text = (daemon.state / "status-t1.json").read_text()
    assert daemon.stop() == 0
    assert_each_once(daemon, ["waiting-for-marker.jpg", "marked.jpg"])
    log_text = daemon.log_path.read_text()
    assert len(daemon.events("job_finished")) == 2
    for name in ("waiting-for-marker", "marked.jpg"):
        assert name not in log_text and name not in status_text


def test_kept_originals_stay_and_are_not_processed_again(tmp_path, daemons):
    extra = 'mode = "poll"\npoll_interval_s = 0.2'
    daemon = daemons(tmp_path, extra=extra)
    daemon.config.write_text(daemon.config.read_text().replace('output = "', 'on_success = "keep"\noutput = "', 1))
    daemon.start().wait_ready()
    write_image(daemon.ingest / "kept.jpg", 1)
    wait_for(lambda: daemon.finished() == 1 and (daemon.ingest / "kept.jpg").exists(), 60, "the first file, kept")
    for i, name in enumerate(("later1.jpg", "later2.jpg"), 2):  # each found by scans that also see kept.jpg
        write_image(daemon.ingest / name, i)
        wait_for(lambda: daemon.finished() == i, 60, name)
    assert [e["file"] for e in daemon.events("job_finished")] == ["kept.jpg", "later1.jpg", "later2.jpg"]
    write_image(daemon.ingest / "kept.jpg", 99)  # changed content under the same name: processed again
    wait_for(lambda: daemon.finished() == 4, 60, "the changed file")
    assert daemon.stop() == 0
    published = sidecars(tmp_path / "out") + sidecars(tmp_path / "review")
    assert len(published) == 4 and "kept.jpg.veil.json" in published
    assert len([p for p in published if p.startswith("kept.")]) == 2  # the second under its hash-suffixed name
    assert files(daemon.ingest) == ["kept.jpg", "later1.jpg", "later2.jpg"]
    assert files(tmp_path / "originals") == []
