"""Dispatch behind one small interface, and the local backend: N spawned worker processes.

``Dispatcher`` is what the service loop uses: submit a job, receive outcomes. The multi-host backend (Celery
on RabbitMQ, ``daemon.dispatch.client``) implements the same methods. The local pool watches its workers, each
running up to ``WorkerSpec.jobs`` jobs at once: a crashed worker, or one with a job whose heartbeat stops or
that runs past the timeout, is killed and replaced, and its jobs come back as failed attempts for the service
to retry or to fail. A job that stopped making progress has its worker asked for its Python stack (it lands on
stderr, in the log) before the kill. The neighbours of a job found hung or overdue come back uncharged: the
attempt was not theirs to lose. A worker that dies with several jobs running blames none of them: they come
back uncharged, to run again each in a worker of its own, where a second crash is its own. A worker past
``max_jobs`` jobs or ``max_rss_mb`` of memory takes no more jobs and is replaced once its running ones end,
never during one (gunicorn's ``max_requests``).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Protocol

from daemon import log
from daemon.service.messages import Done, FromWorker, Heartbeat, Ready, RunJob, StartupFailed, Stop
from daemon.service.worker import STACK_SIGNAL, JobSpec, WorkerSpec, worker_main

_log = log.get("veil.pool")


@dataclass(frozen=True)
class Outcome:
    job_id: str
    report_json: str | None  # the sidecar to publish, when the job ran to an end (any disposition)
    failure: str | None = None  # why the attempt ended without a report (crash, hang, timeout)
    charged: bool = True  # False: a neighbour hung or overran, or the worker died under several jobs
    alone: bool = False  # its next attempt must run without neighbours: its worker died under several jobs


@dataclass(frozen=True)
class InFlight:
    job_id: str
    worker: int
    pid: int | None
    started: float  # wall clock


class PoolBroken(Exception):
    """Workers cannot start (e.g. a model that does not load): the service must not run."""


class Dispatcher(Protocol):
    # False: jobs live in this process (staging prepared here, unfinished jobs put back at a stop). True: they
    # live on a broker (daemon/dispatch): the worker prepares staging and a stop leaves them claimed.
    remote: bool

    def start(self) -> None: ...

    def free_slots(self) -> int: ...

    def submit(self, job: JobSpec, *, alone: bool = False) -> None:
        """``alone``: in an idle worker, which takes no other job while it runs."""
        ...

    def poll(self, timeout: float) -> list[Outcome]: ...

    def in_flight(self) -> list[InFlight]: ...

    def idle_workers(self) -> int:
        """Workers ready with no job running: where a job to run ``alone`` may go."""
        ...

    def stop(self, grace_s: float) -> list[Outcome]: ...


@dataclass
class _Running:
    job: JobSpec
    started: float  # monotonic
    last_seen: float  # its last heartbeat
    alone: bool = False  # no other job may join it in its worker
    delivered: bool = True  # False: its worker had died (not yet noticed) before the job could be sent


@dataclass(frozen=True)
class _Trouble:
    reason: str
    culprit: str | None = None  # the job that caused it, where one did: its neighbours are not charged


@dataclass
class _Slot:
    spec: WorkerSpec
    process: multiprocessing.process.BaseProcess | None = None
    conn: Connection | None = None
    ready: bool = False
    running: dict[str, _Running] = field(default_factory=dict)
    last_seen: float = 0.0  # any word from the worker
    startup_failures: int = 0
    jobs_done: int = 0
    spent: bool = False  # past its limits: takes no more jobs, retired once the running ones end
    retiring_since: float | None = None  # told to stop, to be replaced (recycling)
    doomed: tuple[_Trouble, float] | None = None  # (why, when to kill): hung, its stack asked for

    def free(self) -> int:
        if not self.ready or self.spent or any(running.alone for running in self.running.values()):
            return 0
        return self.spec.jobs - len(self.running)

    def idle(self) -> bool:
        return self.free() == self.spec.jobs


class LocalPool:
    remote = False

    def __init__(self, specs: list[WorkerSpec], *, job_timeout_s: float, heartbeat_timeout_s: float,
                 startup_timeout_s: float = 600.0, max_startup_failures: int = 3, max_jobs: int = 0,
                 max_rss_mb: float = 0.0, stack_dump_s: float = 2.0, retire_timeout_s: float = 10.0) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = [_Slot(spec) for spec in specs]
        self.job_timeout_s = job_timeout_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.max_startup_failures = max_startup_failures
        self.max_jobs = max_jobs  # 0: never recycle by count
        self.max_rss_mb = max_rss_mb  # 0: never recycle by memory
        self.stack_dump_s = stack_dump_s  # how long a hung worker gets to print its stack before SIGKILL
        self.retire_timeout_s = retire_timeout_s
        self.restarts = 0
        self.recycled = 0

    # -- lifecycle ---------------------------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=worker_main, args=(child, slot.spec), name=f"veil-worker-{slot.spec.index}",
                                    daemon=True)
        process.start()
        child.close()
        slot.process, slot.conn, slot.ready, slot.running = process, parent, False, {}
        slot.last_seen = time.monotonic()
        slot.jobs_done, slot.spent, slot.retiring_since, slot.doomed = 0, False, None, None

    def start(self) -> None:
        """Start every worker and wait until all have loaded and warmed up their models."""
        for slot in self._slots:
            self._spawn(slot)
        deadline = time.monotonic() + self.startup_timeout_s
        while not all(slot.ready for slot in self._slots):
            if time.monotonic() > deadline:
                self._kill_all()
                raise PoolBroken(f"workers did not start within {self.startup_timeout_s:.0f} s")
            self._receive(min(1.0, max(0.0, deadline - time.monotonic())), strict_start=True)

    def _kill(self, slot: _Slot) -> None:
        if slot.process is not None and slot.process.is_alive():
            slot.process.kill()
        if slot.process is not None:
            slot.process.join(timeout=10)
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.ready = None, None, False

    def _kill_all(self) -> None:
        for slot in self._slots:
            self._kill(slot)

    # -- dispatch ----------------------------------------------------------------------------------------

    def free_slots(self) -> int:
        return sum(slot.free() for slot in self._slots)

    def idle_workers(self) -> int:
        return sum(slot.idle() for slot in self._slots)

    def submit(self, job: JobSpec, *, alone: bool = False) -> None:
        """To the worker with the most room: jobs spread over the processes before any runs two. ``alone``: to
        an idle worker, which then takes no other job until this one ends."""
        slot = max(self._slots, key=lambda slot: slot.free())
        if (alone and not slot.idle()) or slot.free() == 0 or slot.conn is None:
            raise RuntimeError(f"submit() without {'an idle' if alone else 'a free'} worker")
        try:
            slot.conn.send(RunJob(job))
            delivered = True
        except OSError:  # the worker died since the last poll: _reap replaces it and gives the job back uncharged
            slot.ready, delivered = False, False
        now = time.monotonic()
        slot.running[job.job_id] = _Running(job, started=now, last_seen=now, alone=alone, delivered=delivered)

    def in_flight(self) -> list[InFlight]:
        now_wall, now = time.time(), time.monotonic()
        return [
            InFlight(running.job.job_id, slot.spec.index, slot.process.pid if slot.process else None,
                     now_wall - (now - running.started))
            for slot in self._slots for running in slot.running.values()
        ]

    def worker_pids(self) -> list[int | None]:
        return [slot.process.pid if slot.process else None for slot in self._slots]

    def poll(self, timeout: float) -> list[Outcome]:
        outcomes = self._receive(timeout)
        outcomes += self._reap()
        return outcomes

    # -- messages ----------------------------------------------------------------------------------------

    def _receive(self, timeout: float, strict_start: bool = False) -> list[Outcome]:
        outcomes: list[Outcome] = []
        waitables: list[Connection | int] = [slot.conn for slot in self._slots if slot.conn is not None]
        waitables += [slot.process.sentinel for slot in self._slots if slot.process is not None]
        if not waitables:
            time.sleep(timeout)  # nothing to wait on (all workers being replaced): just pace the loop
            return outcomes
        ready = wait(waitables, timeout)
        for slot in self._slots:
            if slot.conn is None or slot.conn not in ready:
                continue
            while slot.conn is not None and slot.conn.poll():
                try:
                    message = slot.conn.recv()
                except (EOFError, OSError):
                    break  # the process died; _reap handles it
                outcome = self._on_message(slot, message, strict_start)
                if outcome is not None:
                    outcomes.append(outcome)
        if strict_start:
            for slot in self._slots:
                if slot.process is not None and not slot.process.is_alive() and not slot.ready:
                    code = slot.process.exitcode
                    self._kill_all()
                    raise PoolBroken(f"worker {slot.spec.index} exited with code {code} while starting")
        return outcomes

    def _on_message(self, slot: _Slot, message: FromWorker, strict_start: bool) -> Outcome | None:
        slot.last_seen = now = time.monotonic()
        if slot.doomed is not None and not (isinstance(message, Done) and message.job_id != slot.doomed[0].culprit):
            return None  # judged hung: a late word does not save it; a neighbour's job that ended still counts
        if isinstance(message, Ready):
            slot.ready, slot.startup_failures = True, 0
        elif isinstance(message, StartupFailed):
            slot.startup_failures += 1
            _log.error("worker_start_failed", worker=slot.spec.index, error=message.error)
            self._kill(slot)
            if strict_start or slot.startup_failures >= self.max_startup_failures:
                self._kill_all()
                raise PoolBroken(f"worker {slot.spec.index} could not start: {message.error}")
        elif isinstance(message, Done) and slot.running.pop(message.job_id, None) is not None:
            slot.jobs_done += 1
            self._retire_if_spent(slot, message.rss_mb)
            return Outcome(message.job_id, message.report_json)
        elif isinstance(message, Heartbeat) and message.job_id in slot.running:
            slot.running[message.job_id].last_seen = now
        return None

    def _retire_if_spent(self, slot: _Slot, rss_mb: float) -> None:
        """A worker past its job count or memory limit takes no more jobs, and is told to stop once its
        running ones have ended; _reap replaces it."""
        if not slot.spent:
            if self.max_jobs and slot.jobs_done >= self.max_jobs:
                reason = f"{slot.jobs_done} jobs done (worker_max_jobs {self.max_jobs})"
            elif self.max_rss_mb and rss_mb > self.max_rss_mb:
                reason = f"{rss_mb:.0f} MiB resident (worker_max_rss_mb {self.max_rss_mb:.0f})"
            else:
                return
            _log.info("worker_recycled", worker=slot.spec.index, reason=reason)
            slot.spent = True
        if slot.running:
            return
        slot.ready, slot.retiring_since = False, time.monotonic()
        try:
            if slot.conn is not None:
                slot.conn.send(Stop())
        except OSError:
            pass  # already gone: _reap replaces it all the same

    # -- supervision -------------------------------------------------------------------------------------

    def _trouble(self, slot: _Slot, now: float) -> _Trouble | None:
        """Why this worker must be replaced, if it must."""
        if slot.process is None:
            return _Trouble("restart")
        if not slot.process.is_alive():
            return _Trouble(f"worker exited with code {slot.process.exitcode}")
        for job_id, running in slot.running.items():
            if now - running.started > self.job_timeout_s:
                return _Trouble(f"job timed out after {self.job_timeout_s:.0f} s", job_id)
            if now - running.last_seen > self.heartbeat_timeout_s:  # idle workers have nothing to report
                return _Trouble(f"job silent for {self.heartbeat_timeout_s:.0f} s", job_id)
        if not slot.ready and not slot.spent and now - slot.last_seen > self.startup_timeout_s:
            return _Trouble("worker did not finish starting")
        return None

    def _reap(self) -> list[Outcome]:
        """Replace dead, hung, overdue or retired workers; their jobs come back as failed attempts."""
        outcomes: list[Outcome] = []
        now = time.monotonic()
        for slot in self._slots:
            if slot.doomed is not None:
                why, kill_at = slot.doomed
                if now >= kill_at or slot.process is None or not slot.process.is_alive():
                    self._replace(slot, why, outcomes)
            elif slot.retiring_since is not None:
                alive = slot.process is not None and slot.process.is_alive()
                if not alive or now - slot.retiring_since > self.retire_timeout_s:
                    self._kill(slot)
                    self._spawn(slot)
                    self.recycled += 1
            elif (trouble := self._trouble(slot, now)) is not None:
                if slot.process is not None and slot.process.is_alive() and self.stack_dump_s > 0:
                    self._ask_for_stack(slot, trouble, now)
                else:
                    self._replace(slot, trouble, outcomes)
        return outcomes

    def _ask_for_stack(self, slot: _Slot, trouble: _Trouble, now: float) -> None:
        """A hung worker prints its Python stack (faulthandler, on stderr) before it is killed."""
        assert slot.process is not None and slot.process.pid is not None
        _log.warning("worker_hung", worker=slot.spec.index, reason=trouble.reason, job=trouble.culprit,
                     jobs=list(slot.running))
        try:
            os.kill(slot.process.pid, STACK_SIGNAL)
        except ProcessLookupError:
            pass
        slot.ready, slot.doomed = False, (trouble, now + self.stack_dump_s)

    def _replace(self, slot: _Slot, trouble: _Trouble, outcomes: list[Outcome]) -> None:
        if slot.process is not None:
            _log.warning("worker_replaced", worker=slot.spec.index, reason=trouble.reason, job=trouble.culprit,
                         jobs=list(slot.running))
        shared = sum(running.delivered for running in slot.running.values()) > 1
        for job_id, running in slot.running.items():
            if not running.delivered:
                outcomes.append(Outcome(job_id, None, failure=f"its worker was gone before the job reached it: "
                                        f"{trouble.reason}", charged=False, alone=running.alone))
            elif job_id == trouble.culprit or (trouble.culprit is None and not shared):
                outcomes.append(Outcome(job_id, None, failure=trouble.reason))
            elif trouble.culprit is None:  # any of them may have caused it: each runs next in a worker alone
                outcomes.append(Outcome(job_id, None, failure=f"{trouble.reason}, running {len(slot.running)} jobs",
                                        charged=False, alone=True))
            else:
                outcomes.append(Outcome(job_id, None, failure=f"its worker was replaced: another {trouble.reason}",
                                        charged=False))
        self._kill(slot)
        self._spawn(slot)
        self.restarts += 1

    def stop(self, grace_s: float) -> list[Outcome]:
        """Let running jobs finish for up to ``grace_s``, then stop every worker. Returns the outcomes."""
        outcomes: list[Outcome] = []
        deadline = time.monotonic() + grace_s
        while any(slot.running for slot in self._slots) and time.monotonic() < deadline:
            outcomes += self._receive(min(0.5, max(0.0, deadline - time.monotonic())))
            for slot in self._slots:  # a worker that dies now is not replaced: its jobs stay claimed
                if slot.running and slot.process is not None and not slot.process.is_alive():
                    slot.running = {}
        for slot in self._slots:
            if slot.conn is not None and not slot.running and slot.process is not None and slot.process.is_alive():
                try:
                    slot.conn.send(Stop())
                except OSError:
                    pass
        for slot in self._slots:
            if slot.process is not None:
                slot.process.join(timeout=0 if slot.running else 2)
            self._kill(slot)
            slot.running = {}
        return outcomes
