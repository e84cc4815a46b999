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
        if data == b"busy":
            for _ in range(100):  # moves for 30 s, beating: outlives a neighbour found hung
                time.sleep(0.3)
                progress()
        if data == b"meet":
            meet(Path(job.src))
        if data == b"raise":
            Path(job.dst).write_bytes(b"partial")
            raise RuntimeError("boom")
        Path(job.dst).write_bytes(data.upper())
        return QCReport(veil_version="t", created_at=datetime.now(timezone.utc), input=FileInfo(name=job.name),
                        output=FileInfo(name=job.name), params={"pid": self.pid})


def meet(src: Path) -> None:
    """Returns once every "meet" job in the folder has arrived here: only jobs running at once all return."""
    src.with_suffix(".here").touch()
    expected = {path.with_suffix(".here") for path in src.parent.iterdir() if path.read_bytes() == b"meet"}
    deadline = time.monotonic() + 20
    while not all(path.exists() for path in expected):
        if time.monotonic() > deadline:
            raise RuntimeError("alone: the other jobs did not run at the same time")
        time.sleep(0.05)
        progress()


def stuck_in_the_fake_runner() -> None:
    time.sleep(3600)  # no progress: the heartbeat stops


class BrokenRunner:
    def __init__(self, spec: WorkerSpec) -> None:
        raise RuntimeError("model file missing")


def make_pool(runner: str = f"{HERE}:CopyRunner", workers: int = 1, jobs: int = 1, **kwargs) -> LocalPool:
    specs = [WorkerSpec(index=i, device="cpu", threads=1, model_dir=None, runner=runner, heartbeat_s=0.2, jobs=jobs)
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


@pytest.mark.parametrize("jobs", [1, 2])
def test_stop_waits_for_running_jobs(pool, tmp_path, jobs):
    p = pool(jobs=jobs)
    names = ["a", "b"][:jobs]
    for name in names:
        p.submit(job(tmp_path, name, b"slow"))  # 3 s each, at once in one worker
    outcomes = p.stop(30)
    assert sorted(o.job_id for o in outcomes) == names and all(o.failure is None for o in outcomes)
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


# -- several jobs per worker ([service] jobs_per_worker) -------------------------------------------------------


def _pid_of(outcome) -> int:
    assert outcome.failure is None, outcome.failure
    report = QCReport.from_json(outcome.report_json)
    assert report.disposition != "failed", report.error  # e.g. "alone": a meeting job that ran by itself
    return report.params["pid"]


def test_a_worker_runs_its_jobs_at_once(pool, tmp_path):
    p = pool(jobs=3)
    assert p.free_slots() == 3
    for name in "abc":
        p.submit(job(tmp_path, name, b"meet"))  # each returns only once all three are running
    assert p.free_slots() == 0
    assert len(p.in_flight()) == 3
    outcomes = collect(p, 3)
    assert len({_pid_of(o) for o in outcomes}) == 1  # one process ran all three
    assert p.free_slots() == 3


def test_jobs_spread_over_the_workers_before_any_runs_two(pool, tmp_path):
    p = pool(workers=2, jobs=2)
    p.submit(job(tmp_path, "a", b"meet"))
    p.submit(job(tmp_path, "b", b"meet"))
    assert len({_pid_of(o) for o in collect(p, 2)}) == 2


def test_a_silent_job_is_found_while_its_neighbour_beats_and_the_neighbour_is_not_charged(pool, tmp_path):
    p = pool(jobs=2, heartbeat_timeout_s=1.5, stack_dump_s=0.5)
    p.submit(job(tmp_path, "busy", b"busy"))  # beats every 0.3 s for 30 s: the worker is never quiet
    p.submit(job(tmp_path, "stuck", b"stuck"))  # never beats
    outcomes = {o.job_id: o for o in collect(p, 2, deadline_s=25)}
    assert "silent" in outcomes["stuck"].failure and outcomes["stuck"].charged
    assert "another job silent" in outcomes["busy"].failure and not outcomes["busy"].charged
    assert p.restarts == 1


def test_a_spent_worker_takes_no_more_jobs_and_is_replaced_only_once_its_jobs_end(pool, tmp_path):
    p = pool(jobs=2, max_jobs=1)
    p.submit(job(tmp_path, "slow", b"slow"))  # 3 s
    p.submit(job(tmp_path, "quick", b"data"))
    [quick] = collect(p, 1)
    assert quick.job_id == "quick" and p.free_slots() == 0  # spent after one job: its free slot is not offered
    [slow] = collect(p, 1)
    assert slow.job_id == "slow" and _pid_of(slow) == _pid_of(quick)  # never recycled mid-job
    deadline = time.monotonic() + 60
    while p.free_slots() < 2:  # the replacement loads
        assert time.monotonic() < deadline
        p.poll(0.1)
    assert p.recycled == 1 and p.restarts == 0 and p.worker_pids()[0] != _pid_of(slow)


def test_a_neighbour_that_ends_while_the_hung_job_s_stack_is_taken_is_published(pool, tmp_path):
    p = pool(jobs=2, heartbeat_timeout_s=1.0, stack_dump_s=5.0)
    p.submit(job(tmp_path, "stuck", b"stuck"))  # found silent after 1 s, killed 5 s later
    p.submit(job(tmp_path, "slow", b"slow"))  # ends after 3 s, in between
    outcomes = {o.job_id: o for o in collect(p, 2, deadline_s=25)}
    assert outcomes["slow"].failure is None and (tmp_path / "slow.out").read_bytes() == b"SLOW"
    assert "silent" in outcomes["stuck"].failure and p.restarts == 1


def test_a_worker_that_dies_under_several_jobs_blames_none_and_each_runs_next_alone(pool, tmp_path):
    p = pool(jobs=2)
    p.submit(job(tmp_path, "slow", b"slow"))
    p.submit(job(tmp_path, "crash", b"crash"))
    outcomes = {o.job_id: o for o in collect(p, 2)}
    for outcome in outcomes.values():  # either may have killed it
        assert not outcome.charged and outcome.alone and "exited with code 3, running 2 jobs" in outcome.failure
    deadline = time.monotonic() + 60
    while p.idle_workers() == 0:  # the replacement loads
        assert time.monotonic() < deadline
        p.poll(0.2)
    p.submit(job(tmp_path, "crash", b"crash"), alone=True)
    assert p.free_slots() == 0 and p.idle_workers() == 0  # it has the worker to itself
    with pytest.raises(RuntimeError, match="idle"):
        p.submit(job(tmp_path, "other", b"data"), alone=True)
    [again] = collect(p, 1)
    assert again.charged and not again.alone and again.failure == "worker exited with code 3"  # its own crash now


def _exited(pid: int) -> bool:
    """The child has died (a zombie, or already reaped): the pool, not polled meanwhile, has not noticed."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_job_sent_to_a_worker_that_died_unnoticed_comes_back_uncharged(pool, tmp_path):
    p = pool(jobs=2)
    [pid] = p.worker_pids()
    assert pid is not None
    p.submit(job(tmp_path, "crash", b"crash"))
    deadline = time.monotonic() + 30
    while not _exited(pid):  # no poll meanwhile: the pool still counts a free place in that worker
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert p.free_slots() == 1
    p.submit(job(tmp_path, "late", b"late"))  # its pipe is broken: no exception, the job is held for _reap
    assert p.free_slots() == 0
    outcomes = {o.job_id: o for o in collect(p, 2)}
    assert outcomes["crash"].charged and not outcomes["crash"].alone  # the only job it had: its own crash
    assert not outcomes["late"].charged and "gone before the job reached it" in outcomes["late"].failure
    deadline = time.monotonic() + 60
    while p.free_slots() == 0:  # the replacement loads
        assert time.monotonic() < deadline
        p.poll(0.2)
    p.submit(job(tmp_path, "late", b"late"))
    [done] = collect(p, 1)
    assert done.failure is None and (tmp_path / "late.out").read_bytes() == b"LATE"


def test_a_crash_under_one_job_of_a_shared_worker_is_that_job_s(pool, tmp_path):
    p = pool(jobs=2)
    p.submit(job(tmp_path, "crash", b"crash"))
    [outcome] = collect(p, 1)
    assert outcome.charged and not outcome.alone
