"""Time on the Celery backend, scaled down to seconds, on the real RabbitMQ and models.

- A job past its soft limit fails closed: failed/ with "time limit of N s exceeded", no partial output.
- A job that runs on past its hard limit has its child killed and goes back to its queue, a delivery counted:
  after the delivery limit it is dead-lettered into failed/.
- The broker's consumer timeout: a job longer than it is taken back from its worker while it runs and
  delivered again (the failure that raising it above the longest job prevents); with the timeout above the
  job, it is delivered once. RabbitMQ before 3.12 ignores the per-queue ``x-consumer-timeout`` Veil declares,
  so the test sets the broker-wide ``consumer_timeout`` (and a 1 s channel tick, so it is checked in time)
  with rabbitmqctl for new channels, and puts the defaults back afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.integration.broker_harness import broker, workers  # noqa: F401 - fixtures
from tests.integration.serve_harness import (  # noqa: F401 - fixtures
    assert_each_once,
    daemons,
    models_installed,
    wait_for,
    write_image,
)

pytestmark = pytest.mark.usefixtures("models_installed")
LIMITS = {"photo_soft_limit_s": 30.0, "max_job_s": 30.0, "hard_grace_s": 5.0, "consumer_timeout_s": 40.0}


def test_a_job_past_its_soft_limit_fails_closed(tmp_path, broker, daemons, workers):
    # A long grace (the hard limit at 17 s, the job sleeping 20 s): on a loaded machine the child's clean
    # failure must not be overtaken by the hard kill, which would deliver the job again.
    limits = {**LIMITS, "photo_soft_limit_s": 2.0, "hard_grace_s": 15.0, "consumer_timeout_s": 60.0}
    daemon = daemons(tmp_path, extra=broker.dispatch_toml(**limits))
    worker = workers(daemon, "w1", env={"VEIL_TEST_SLOW_S": "20"}).start()
    daemon.start().wait_ready()
    worker.wait_ready()
    write_image(daemon.ingest / "slow.jpg", seed=1)

    wait_for(lambda: daemon.finished() == 1, 60, "the file to be failed")
    [report] = assert_each_once(daemon, ["slow.jpg"]).values()
    assert report.disposition == "failed" and report.error is not None
    assert report.error.message == "time limit of 2 s exceeded"
    assert (tmp_path / "failed" / "slow.jpg").is_file() and not list((tmp_path / "out").glob("slow*"))
    assert [e["status"] for e in worker.events("job_delivered")] == ["published"]  # acknowledged: no redelivery
    assert daemon.stop() == 0


def test_a_job_past_its_hard_limit_is_requeued_and_counts_towards_the_delivery_limit(
        tmp_path, broker, daemons, workers):
    limits = {**LIMITS, "photo_soft_limit_s": 1.0, "hard_grace_s": 1.0, "delivery_limit": 1}
    daemon = daemons(tmp_path, extra=broker.dispatch_toml(**limits))
    worker = workers(daemon, "w1").start()
    daemon.start().wait_ready()
    worker.wait_ready()
    write_image(daemon.ingest / "stubborn.jpg", seed=3)

    wait_for(lambda: daemon.finished() == 1, 90, "the file to be given up")
    [report] = assert_each_once(daemon, ["stubborn.jpg"]).values()
    assert report.disposition == "failed" and report.error is not None
    assert report.error.message.startswith("gave up after 2 deliveries"), report.error.message
    assert worker.log_path.read_text().count("Hard time limit (2.0s) exceeded") == 2
    assert worker.events("job_delivered") == []  # the child never got to answer: killed both times
    assert broker.depth("photo") == broker.depth("dead") == 0
    assert daemon.stop() == 0


@contextmanager
def broker_consumer_timeout(ms: int) -> Iterator[None]:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        pytest.fail("rabbitmqctl is needed to set the broker's consumer_timeout")

    def setenv(timeout: int, tick: int) -> None:
        expr = (f"application:set_env(rabbit, consumer_timeout, {timeout}), "
                f"application:set_env(rabbit, channel_tick_interval, {tick}).")
        subprocess.run([tool, "eval", expr], check=True, capture_output=True, timeout=60)

    setenv(ms, 1000)
    try:
        yield
    finally:
        setenv(1800000, 60000)  # RabbitMQ's defaults


def _run_slow_job(tmp_path, broker, daemons, workers, timeout_ms: int):
    daemon = daemons(tmp_path, extra=broker.dispatch_toml(**LIMITS))
    with broker_consumer_timeout(timeout_ms):
        worker = workers(daemon, "w1", env={"VEIL_TEST_SLOW_S": "5"}).start()  # its channels see the timeout
        daemon.start().wait_ready()
        worker.wait_ready()
        write_image(daemon.ingest / "slow.jpg", seed=2)
        wait_for(lambda: worker.events("job_delivered"), 90, "the job's answer")
    return daemon, worker


@pytest.mark.broker_alone  # the consumer timeout is set broker-wide
def test_a_job_shorter_than_the_consumer_timeout_is_delivered_once(tmp_path, broker, daemons, workers):
    daemon, worker = _run_slow_job(tmp_path, broker, daemons, workers, 15000)
    wait_for(lambda: daemon.finished() == 1, 60, "the file to be published")
    assert_each_once(daemon, ["slow.jpg"])
    assert [e["deliveries"] for e in worker.events("job_delivered")] == [1]
    assert "delivery acknowledgement" not in worker.log_path.read_text()
    assert worker.proc is not None and worker.proc.poll() is None
    assert broker.depth("photo") == 0
    assert daemon.stop() == 0


@pytest.mark.broker_alone  # the consumer timeout is set broker-wide
def test_control_a_job_longer_than_the_consumer_timeout_costs_its_node_and_runs_again(
        tmp_path, broker, daemons, workers):
    daemon, worker = _run_slow_job(tmp_path, broker, daemons, workers, 2000)
    assert worker.proc is not None
    code = worker.proc.wait(60)  # Celery treats the closed channel as unrecoverable: the whole node stops
    assert code != 0  # a failure: veil-worker@.service (Restart=on-failure) starts it again
    text = worker.log_path.read_text()
    assert "delivery acknowledgement on channel" in text and "Unrecoverable error: PreconditionFailed" in text
    assert wait_for(lambda: broker.depth("photo") == 1, 30, "the job back on its queue")  # to run again elsewhere
    # The job itself was published before the node stopped; its second delivery finds that in the journal
    # (or finds the job gone, when veil serve has finalized it already) and does nothing.
    second = workers(daemon, "w2").start()
    wait_for(lambda: second.events("job_delivered"), 90, "the second delivery's answer")
    assert [(e["status"], e["deliveries"]) for e in second.events("job_delivered")] in (
        [("published", 2)], [("gone", 0)])
    assert "job_delivered" not in text.split("Unrecoverable error")[0], "the first answer came after the timeout"
    wait_for(lambda: daemon.finished() == 1, 60, "the file to be published")
    assert_each_once(daemon, ["slow.jpg"])
    assert daemon.stop() == 0
