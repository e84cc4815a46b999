"""The local pool's supervision, with fake job functions injected into real spawned workers.

The fakes stand in for the pipeline only: processes, pipes, crashes, hangs, heartbeats, stack dumps and
timeouts are real.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.qc import FileInfo, QCReport

from daemon.service.heartbeat import progress
from daemon.service.pool import LocalPool, PoolBroken
from daemon.service.worker import JobSpec, WorkerSpec

HERE = __name__  # importable in the spawned child, which gets this process's sys.path


class CopyRunner:
    def __init__(self, spec: WorkerSpec) -> None:
        self.pid = os.getpid()

    def run(self, job: JobSpec) -> QCReport:
        data = Path(job.src).read_bytes()
        if data == b"crash":
            os._exit(3)
        if data == b"hang":
            time.sleep(3600)
        if data == b"stuck":
            stuck_in_the_fake_runner()
        if data == b"slow":
            for _ in range(10):  # a long job that moves: it beats, so it is not silent
                time.sleep(0.3)
                progress()
        if data == b"raise":
            Path(job.dst).write_bytes(b"partial")
            raise RuntimeError("boom")
        Path(job.dst).write_bytes(data.upper())
        return QCReport(veil_version="t", created_at=datetime.now(timezone.utc), input=FileInfo(name=job.name),
                        output=FileInfo(name=job.name), params={"pid": self.pid})


def stuck_in_the_fake_runner() -> None:
    time.sleep(3600)  # no progress: the heartbeat stops


class BrokenRunner:
    def __init__(self, spec: WorkerSpec) -> None:
        raise RuntimeError("model file missing")


def make_pool(runner: str = f"{HERE}:CopyRunner", workers: int = 1, **kwargs) -> LocalPool:
    specs = [WorkerSpec(index=i, device="cpu", threads=1, model_dir=None, runner=runner, heartbeat_s=0.2)
             for i in range(workers)]
    options = {"job_timeout_s": 30.0, "heartbeat_timeout_s": 10.0, "startup_timeout_s": 60.0}
    options.update(kwargs)
    return LocalPool(specs, **options)


def job(tmp_path: Path, name: str, data: bytes) -> JobSpec:
    src = tmp_path / name
    src.write_bytes(data)
    return JobSpec(job_id=name, profile="default", src=str(src), dst=str(tmp_path / f"{name}.out"), name=name)


def collect(pool: LocalPool, count: int, deadline_s: float = 60.0) -> list:
    outcomes = []
    deadline = time.monotonic() + deadline_s
    while len(outcomes) < count:
        assert time.monotonic() < deadline, f"only {len(outcomes)} of {count} outcomes"
        outcomes += pool.poll(0.2)
    return outcomes


@pytest.fixture
def pool():
    pools: list[LocalPool] = []

    def start(*args, **kwargs) -> LocalPool:
        p = make_pool(*args, **kwargs)
        p.start()
        pools.append(p)
        return p

    yield start
    for p in pools:
        p.stop(0)


def test_jobs_run_and_results_come_back(pool, tmp_path):
    p = pool(workers=2)
    assert p.free_slots() == 2
    p.submit(job(tmp_path, "a", b"abc"))
    p.submit(job(tmp_path, "b", b"xyz"))
    assert p.free_slots() == 0
    outcomes = {o.job_id: o for o in collect(p, 2)}
    assert set(outcomes) == {"a", "b"} and all(o.failure is None for o in outcomes.values())
    assert (tmp_path / "a.out").read_bytes() == b"ABC"
    assert QCReport.from_json(outcomes["a"].report_json).input.sha256  # the worker adds the input hash
    assert p.free_slots() == 2


def test_a_crashing_worker_is_replaced_and_its_job_returned(pool, tmp_path):
    p = pool()
    first_pid = p.worker_pids()[0]
    p.submit(job(tmp_path, "c", b"crash"))
    [outcome] = collect(p, 1)
    assert outcome.report_json is None and "exited with code 3" in outcome.failure
    deadline = time.monotonic() + 60
    while p.free_slots() == 0:  # the replacement loads and reports ready
        assert time.monotonic() < deadline
        p.poll(0.2)
    assert p.worker_pids()[0] != first_pid and p.restarts == 1
    p.submit(job(tmp_path, "ok", b"fine"))
    [outcome] = collect(p, 1)
    assert outcome.failure is None


def test_a_hung_job_times_out(pool, tmp_path):
    p = pool(job_timeout_s=1.0)
    p.submit(job(tmp_path, "h", b"hang"))
    [outcome] = collect(p, 1, deadline_s=30)
    assert outcome.report_json is None and "timed out" in outcome.failure


def test_an_exception_fails_the_file_closed(pool, tmp_path):
    p = pool()
    p.submit(job(tmp_path, "r", b"raise"))
    [outcome] = collect(p, 1)
    report = QCReport.from_json(outcome.report_json)
    assert report.disposition == "failed" and "boom" in report.error.message
    assert not (tmp_path / "r.out").exists()  # the partial output is gone


def test_workers_that_cannot_start_stop_the_pool(tmp_path):
    p = make_pool(f"{HERE}:BrokenRunner")
    with pytest.raises(PoolBroken, match="model file missing"):
        p.start()


def test_stop_waits_for_running_jobs(pool, tmp_path):
    p = pool()
    p.submit(job(tmp_path, "a", b"abc"))
    outcomes = p.stop(30)
    assert [o.job_id for o in outcomes] == ["a"]
    assert all(pid is None for pid in p.worker_pids())


def test_a_frozen_worker_is_found_by_its_missing_heartbeat(pool, tmp_path):
    import signal

    p = pool(heartbeat_timeout_s=1.5)  # the job timeout (30 s) is far away
    p.submit(job(tmp_path, "f", b"hang"))  # a long job: only the heartbeat thread speaks
    pid = p.worker_pids()[0]
    os.kill(pid, signal.SIGSTOP)  # the whole process frozen: no heartbeat either
    [outcome] = collect(p, 1, deadline_s=30)
    assert outcome.report_json is None and "silent" in outcome.failure
    assert p.worker_pids()[0] != pid


def test_a_job_that_makes_progress_is_not_silent(pool, tmp_path):
    p = pool(heartbeat_timeout_s=1.0)  # the slow job runs 3 s, beating as it goes
    p.submit(job(tmp_path, "s", b"slow"))
    [outcome] = collect(p, 1, deadline_s=30)
    assert outcome.failure is None and p.restarts == 0


def test_a_hung_worker_leaves_its_stack_in_the_log_before_it_is_killed(pool, tmp_path, capfd):
    p = pool(heartbeat_timeout_s=1.0, stack_dump_s=2.0)
    p.submit(job(tmp_path, "st", b"stuck"))  # asleep without progress: no heartbeat
    [outcome] = collect(p, 1, deadline_s=30)
    assert outcome.report_json is None and "silent" in outcome.failure
    err = capfd.readouterr().err
    assert "most recent call first" in err and "in stuck_in_the_fake_runner" in err  # faulthandler's dump


def _run_in_turn(p: LocalPool, tmp_path: Path, count: int) -> list:
    """Jobs one after another; each outcome with the pid of the worker that ran it."""
    outcomes = []
    for i in range(count):
        deadline = time.monotonic() + 60
        while p.free_slots() == 0:  # a recycled worker's replacement loads first
            assert time.monotonic() < deadline
            p.poll(0.1)
        p.submit(job(tmp_path, f"j{i}", b"data"))
        outcomes += collect(p, 1)
    return outcomes


def _pids(outcomes: list) -> list[int]:
    assert all(o.failure is None for o in outcomes)  # never recycled mid-job
    return [QCReport.from_json(o.report_json).params["pid"] for o in outcomes]


@pytest.mark.parametrize("limits, pattern", [
    ({}, "aaaaa"),  # 0, 0: never recycled
    ({"max_jobs": 2}, "aabbc"),
    ({"max_rss_mb": 1}, "abcde"),  # every Python process is over 1 MiB: a new worker for each job
])
def test_workers_are_recycled_between_jobs_past_their_limits(pool, tmp_path, limits, pattern):
    p = pool(**limits)
    pids = _pids(_run_in_turn(p, tmp_path, 5))
    first_seen: dict[int, str] = {}
    for pid in pids:
        first_seen.setdefault(pid, "abcde"[len(first_seen)])
    assert "".join(first_seen[pid] for pid in pids) == pattern
    assert p.restarts == 0 and p.recycled == len(set(pattern)) - 1
