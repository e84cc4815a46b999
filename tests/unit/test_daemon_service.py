"""The service loop with fake job functions in real workers: retries, giving up, recovery after a crash.

The pipeline is faked (this is plumbing); folders, claims, workers and publishing are real.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.qc import QCReport

from daemon.config.settings import load_settings, trial_folder
from daemon.service.lifecycle import Service

RUNNER = f"{__name__}:CopyRunner"  # the fake job function, imported by the spawned worker


class CopyRunner:
    """Stands in for the pipeline: "crash" kills the worker ("crash late" after 2 s), "stuck" hangs,
    "busy" takes 6 s; the rest is upper-cased."""

    def __init__(self, spec) -> None:
        pass

    def run(self, job):
        import os
        from datetime import datetime, timezone

        from pipeline.qc import FileInfo

        from daemon.service.heartbeat import progress

        data = Path(job.src).read_bytes()
        if data == b"crash":
            os._exit(3)
        if data == b"crash late":  # once a neighbour has surely been sent to this worker too (busy runs 6 s)
            time.sleep(2)
            os._exit(3)
        if data == b"stuck":
            time.sleep(3600)  # no progress: the heartbeat stops
        if data == b"busy":
            for _ in range(20):  # moves for 6 s, beating
                time.sleep(0.3)
                progress()
        Path(job.dst).write_bytes(data.upper())
        return QCReport(veil_version="t", created_at=datetime.now(timezone.utc), input=FileInfo(name=job.name),
                        output=FileInfo(name=job.name))


def make_service(tmp_path: Path, **service) -> Service:
    settings = load_settings(
        None,
        folders=[trial_folder(tmp_path / "in", tmp_path / "out", None, None)],
        watch={"settle_s": 0.0, "mode": "poll", "poll_interval_s": 0.2},
        service={"instance": "t", "workers": 1, "max_attempts": 2, "state_dir": tmp_path / "state",
                 "heartbeat_timeout_s": 30, **service},
    )
    return Service(settings, runner=RUNNER)


def run_until(service: Service, done, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not done():
        assert time.monotonic() < deadline, "deadline passed"
        service.step()


def outputs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def serve_until_each_ended(tmp_path: Path, files: dict[str, bytes], **service_settings) -> Service:
    """Drop ``files`` into the ingest folder, run the service until each is published or failed, stop it."""
    (tmp_path / "in").mkdir()
    for name, data in files.items():
        (tmp_path / "in" / name).write_bytes(data)
    service = make_service(tmp_path, **service_settings)
    service.start_internals()
    try:
        run_until(service, lambda: service.counters.failed + service.counters.done == len(files))
    finally:
        service.stop_internals(5)
    return service


def test_a_file_that_kills_its_worker_every_time_is_failed_and_the_service_goes_on(tmp_path):
    service = serve_until_each_ended(tmp_path, {"bad.jpg": b"crash", "good.jpg": b"good"})
    assert outputs(tmp_path / "failed") == ["bad.jpg", "bad.jpg.veil.json"]
    report = QCReport.from_json((tmp_path / "failed" / "bad.jpg.veil.json").read_bytes())
    assert report.error.message.startswith("gave up after 2 attempts") and "exited with code 3" in report.error.message
    assert (tmp_path / "failed" / "bad.jpg").read_bytes() == b"crash"  # the original, unchanged
    assert outputs(tmp_path / "out") == ["good.jpg", "good.jpg.veil.json"]
    assert (tmp_path / "out" / "good.jpg").read_bytes() == b"GOOD"
    assert outputs(tmp_path / "originals") == ["good.jpg"]
    assert service.counters.retried == 2


def test_unfinished_jobs_are_resumed_by_the_next_start(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"a")
    from daemon.intake.stability import StableFile
    from daemon.service.folders import locked_folders

    with locked_folders(make_service(tmp_path).settings) as areas:  # the process is gone: its lock with it
        path = tmp_path / "in" / "a.jpg"
        st = path.stat()
        job = areas["default"].claim(StableFile(path, st.st_size, st.st_mtime_ns))
        job.record.attempts = 1  # as if the service died during its first attempt
        job.save()
    second = make_service(tmp_path)
    second.start_internals()
    try:
        run_until(second, lambda: second.counters.done == 1)
    finally:
        second.stop_internals(5)
    assert outputs(tmp_path / "out") == ["a.jpg", "a.jpg.veil.json"]
    assert not any((tmp_path / "in" / ".veil" / "processing" / "t").iterdir())


def test_status_file_reports_counts(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"a")
    service = make_service(tmp_path)
    service.start_internals()
    try:
        run_until(service, lambda: service.counters.done == 1)
        service._write_status()
    finally:
        service.stop_internals(5)
    status = json.loads((tmp_path / "state" / "status-t.json").read_text())
    assert status["counts"]["done"] == 1 and status["throughput"]["files_last_minute"] == 1
    assert "a.jpg" not in json.dumps(status)  # no file names unless the configuration allows them


class NoOutputRunner:
    """A faulty pipeline: claims success but writes nothing."""

    def __init__(self, spec) -> None:
        pass

    def run(self, job):
        from datetime import datetime, timezone

        from pipeline.qc import FileInfo

        return QCReport(veil_version="t", created_at=datetime.now(timezone.utc), input=FileInfo(name=job.name),
                        output=FileInfo(name=job.name))


def test_a_success_without_its_output_is_failed_closed(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"a")
    service = make_service(tmp_path)
    service.runner = f"{__name__}:NoOutputRunner"
    service.start_internals()
    try:
        run_until(service, lambda: service.counters.failed == 1)
    finally:
        service.stop_internals(5)
    assert outputs(tmp_path / "out") == []
    assert outputs(tmp_path / "failed") == ["a.jpg", "a.jpg.veil.json"]
    report = QCReport.from_json((tmp_path / "failed" / "a.jpg.veil.json").read_bytes())
    assert "did not write: a.jpg" in report.error.message


def test_a_failure_after_the_workers_started_stops_them_and_unlocks_the_folders(tmp_path, monkeypatch):
    import multiprocessing

    import pytest

    from daemon.review.rework_watch import ReworkQueue
    from daemon.service.lifecycle import StartupError

    def unreadable(self) -> None:
        raise PermissionError(13, "Permission denied")

    (tmp_path / "in").mkdir()
    service = make_service(tmp_path)
    monkeypatch.setattr(ReworkQueue, "_recover", unreadable)  # the last part to start fails
    with pytest.raises(StartupError, match="Permission denied"):
        service.start_internals()
    assert multiprocessing.active_children() == []  # the workers started before it are stopped
    monkeypatch.undo()
    again = make_service(tmp_path)
    again.start_internals()  # the folder locks were released
    again.stop_internals(5)


def test_a_reload_whose_fallback_fails_too_stops_the_service_with_an_error(tmp_path):
    from daemon.service.lifecycle import StartupError

    (tmp_path / "in").mkdir()
    service = make_service(tmp_path)
    real_start = service.start_internals
    starts = []

    def start_once(models=None) -> None:
        starts.append(models)
        if len(starts) > 1:
            raise StartupError("the models are gone")  # both the new and the old configuration
        real_start(models)

    service.start_internals = start_once  # type: ignore[method-assign]
    service.overrides = {"folders": [trial_folder(tmp_path / "in", tmp_path / "out", None, None)],
                         "service": {"instance": "t", "workers": 1, "state_dir": tmp_path / "state"}}
    service._reload = True  # SIGHUP before the first turn of the loop
    assert service.run() == 1
    assert len(starts) == 3
    status = json.loads((tmp_path / "state" / "status-t.json").read_text())
    assert status["state"] == "failed"


def test_worker_max_jobs_reaches_the_pool(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "in" / name).write_bytes(name.encode())
    service = make_service(tmp_path, worker_max_jobs=1)
    service.start_internals()
    try:
        run_until(service, lambda: service.counters.done == 2)
        recycled = service._pool.recycled  # type: ignore[union-attr]
    finally:
        service.stop_internals(5)
    assert recycled >= 1 and service.counters.retried == 0  # replaced between jobs, never during one


def test_a_job_whose_neighbour_hung_is_retried_without_losing_a_try(tmp_path):
    # One try each, both in one worker at once: the stuck file's hang kills the busy one's first try too.
    service = serve_until_each_ended(tmp_path, {"stuck.jpg": b"stuck", "busy.jpg": b"busy"}, jobs_per_worker=2,
                                     max_attempts=1, heartbeat_timeout_s=1.5)
    assert outputs(tmp_path / "failed") == ["stuck.jpg", "stuck.jpg.veil.json"]
    assert "silent" in QCReport.from_json((tmp_path / "failed" / "stuck.jpg.veil.json").read_bytes()).error.message
    assert outputs(tmp_path / "out") == ["busy.jpg", "busy.jpg.veil.json"]
    assert (tmp_path / "out" / "busy.jpg").read_bytes() == b"BUSY"
    assert service.counters.retried == 2  # the busy file did run twice: its first try ended with the worker


def test_a_file_that_kills_its_worker_and_a_neighbour_costs_the_neighbour_no_try(tmp_path):
    # One try each, both in one worker at once: the crash ends both tries, and neither is blamed; each runs
    # again alone, where the crash is the bad file's own.
    service = serve_until_each_ended(tmp_path, {"bad.jpg": b"crash late", "busy.jpg": b"busy"}, jobs_per_worker=2,
                                     max_attempts=1)
    assert outputs(tmp_path / "failed") == ["bad.jpg", "bad.jpg.veil.json"]
    assert outputs(tmp_path / "out") == ["busy.jpg", "busy.jpg.veil.json"]
    assert (tmp_path / "out" / "busy.jpg").read_bytes() == b"BUSY"
    assert service.counters.retried == 3  # both ended with the shared worker, then the bad file alone
