"""The worker's heartbeat: rate-limited per job, and each beat names the job whose work moved, from the job's
own thread or from a helper thread it started."""

from __future__ import annotations

import threading

import pytest

from daemon.service import heartbeat
from daemon.service.messages import Heartbeat


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sent():
    beats: list[Heartbeat] = []
    clock = Clock()
    beater = heartbeat.Beater(beats.append, 1.0, clock=clock)
    heartbeat.install(beater)
    yield beats, beater, clock
    heartbeat.install(None)
    heartbeat.running(None)


def test_beats_are_rate_limited_for_each_job_on_its_own(sent):
    beats, beater, clock = sent
    beater("a")
    beater("b")  # another job's beat is not held back by the first's
    beater("a")  # too soon
    clock.now = 1.0
    beater("a")
    assert [beat.job_id for beat in beats] == ["a", "b", "a"]
    beater.forget("b")
    beater("b")  # forgotten: beats at once, as a new job
    assert [beat.job_id for beat in beats] == ["a", "b", "a", "b"]


def test_progress_names_the_job_of_its_thread_and_a_helper_beats_for_the_job_that_started_it(sent):
    beats, _, clock = sent
    heartbeat.progress()  # no job on this thread: the worker itself (loading its models)

    def job(job_id: str) -> None:
        heartbeat.running(job_id)
        heartbeat.progress()
        beat = heartbeat.for_this_job()
        helper = threading.Thread(target=beat)  # a video's detection thread knows no job of its own
        clock.now += 1.0
        helper.start()
        helper.join()

    for job_id in ("j1", "j2"):
        thread = threading.Thread(target=job, args=(job_id,))
        thread.start()
        thread.join()
    assert [beat.job_id for beat in beats] == [None, "j1", "j1", "j2", "j2"]


def test_progress_does_nothing_outside_a_worker():
    heartbeat.install(None)
    heartbeat.progress()
    heartbeat.for_this_job()()
