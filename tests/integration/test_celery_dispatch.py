"""`veil serve` with `[dispatch] backend = "celery"` and `veil worker` processes, on the real local RabbitMQ
and the real models: files dropped into ingest are published once each, whatever happens to the workers."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
import urllib.request

import pytest

from daemon.drift.store import DB_NAME

from tests.integration.broker_harness import (  # noqa: F401 - fixtures
    BROKER_HOST,
    broker,
    free_port,
    separate_host,
    workers,
)
from tests.integration.serve_harness import (  # noqa: F401 - fixtures
    assert_each_once,
    daemons,
    files,
    models_installed,
    wait_for,
    write_image,
    write_video,
)

pytestmark = pytest.mark.usefixtures("models_installed")


def test_200_photos_and_3_clips_through_3_workers_on_two_hosts_each_published_once(tmp_path, broker, daemons, workers):
    """Three workers on two "hosts": this one and, where it can be made, a network namespace of its own that
    reaches the broker over a veth pair (the folders are shared, as a network share would be)."""
    with separate_host() as host2:
        daemon = daemons(tmp_path, extra=broker.dispatch_toml())
        port = free_port()
        first = workers(daemon, "w1", args=["--metrics-port", str(port)]).start()
        if host2 is not None:
            prefix, address = host2
            url = broker.url.replace(f"@{BROKER_HOST}:", f"@{address}:")
            second = workers(daemon, "w2", prefix=prefix, env={"VEIL_DISPATCH__BROKER_URL": url}).start()
        else:
            second = workers(daemon, "w2").start()
        third = workers(daemon, "w3").start()
        daemon.start().wait_ready()
        for worker in (first, second, third):
            worker.wait_ready()
        clips = ["c1.mp4", "c2.mp4", "c3.mp4"]
        names = [f"p{i:03d}.jpg" for i in range(200)] + clips
        for n, clip in enumerate(clips):
            write_video(daemon.ingest / clip, seconds=1.0, seed=n)
        for i, name in enumerate(names[:-3]):
            write_image(daemon.ingest / name, seed=i)

        wait_for(lambda: daemon.finished() == len(names), 420, "every file to be published")
        found = assert_each_once(daemon, names)
        assert {r.disposition for r in found.values()} <= {"done", "review"}
        delivered = first.events("job_delivered") + second.events("job_delivered") + third.events("job_delivered")
        assert sorted(e["job"] for e in delivered if e["status"] == "published") == sorted(
            e["job"] for e in daemon.events("job_enqueued"))
        assert all(w.events("job_delivered") for w in (first, second, third)), "every worker took work"
        if host2 is not None:
            assert f"@{host2[1]}:" in second.log_path.read_text(), "the second host reached the broker over its veth"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("veil_worker_jobs_total{") and 'node="w1@testhost"' in line
                     and 'status="published"' in line)
        assert served == len(first.events("job_delivered"))
        assert 'veil_worker_busy{node="w1@testhost"} 0.0' in metrics
        assert {e["queue"] for e in daemon.events("job_enqueued")} == {f"{broker.prefix}.photo",
                                                                       f"{broker.prefix}.video"}
        assert broker.depth("photo") == broker.depth("video") == broker.depth("dead") == broker.depth("results.t1") == 0
        assert daemon.stop() == 0
        second.stop()
        third.stop()
    # One writer per store: the workers' per-file features came back with their results, and veil serve
    # recorded every file in its own drift store.
    with sqlite3.connect(daemon.state / DB_NAME) as db:
        assert db.execute("SELECT SUM(n) FROM day_files").fetchone()[0] == len(names)


def _staged(daemon, name: str) -> list:
    return list((daemon.ingest / ".veil" / "processing" / daemon.instance).glob(f"*/out/{name}"))


def _deliveries(daemon) -> list[int]:
    return [int(p.read_text()) for p in (daemon.ingest / ".veil" / "processing" / daemon.instance).glob("*/deliveries")]


def test_a_worker_lost_mid_job_twice_gets_its_job_redelivered_and_published_once(tmp_path, broker, daemons, workers):
    daemon = daemons(tmp_path, extra=broker.dispatch_toml(delivery_limit=4))
    doomed = workers(daemon, "doomed", env={"VEIL_TEST_SLOW_S": "60"}).start()
    daemon.start().wait_ready()
    doomed.wait_ready()
    write_image(daemon.ingest / "slow.jpg", seed=3)

    wait_for(lambda: _staged(daemon, "partial.tmp") and _deliveries(daemon) == [1], 60, "the job to start")
    child = doomed.child_pid()
    assert child is not None
    os.kill(child, signal.SIGKILL)  # the child dies mid-job: the node requeues it and a new child takes it
    wait_for(lambda: _deliveries(daemon) == [2] and doomed.child_pid() not in (None, child), 60, "a redelivery")
    wait_for(lambda: _staged(daemon, "partial.tmp"), 30, "the second try to start")
    assert doomed.proc is not None
    os.kill(doomed.proc.pid, signal.SIGKILL)  # the whole node dies (its child with it): the broker redelivers
    doomed.proc.wait(30)

    survivor = workers(daemon, "survivor", env={"VEIL_TEST_SLOW_S": "0"}).start()
    wait_for(lambda: daemon.finished() == 1, 120, "the job to be published")
    [report] = assert_each_once(daemon, ["slow.jpg"]).values()
    assert report.disposition in ("done", "review")
    [answer] = [e for e in survivor.events("job_delivered") if e["status"] == "published"]
    assert answer["deliveries"] == 3
    left = [name for name in files(tmp_path / "out") if "partial" in name or name.endswith(".veil-tmp")]
    assert left == [] and not [p for p in (tmp_path / "out").rglob(".*") if p.is_file()]
    assert broker.depth("photo") == broker.depth("dead") == 0
    assert daemon.stop() == 0


def test_a_poison_file_is_dead_lettered_after_the_delivery_limit_and_fails_with_its_sidecar(
        tmp_path, broker, daemons, workers):
    daemon = daemons(tmp_path, extra=broker.dispatch_toml(delivery_limit=2))
    worker = workers(daemon, "w1").start()
    daemon.start().wait_ready()
    worker.wait_ready()
    write_image(daemon.ingest / "poison.jpg", seed=5)
    write_image(daemon.ingest / "fine.jpg", seed=6)

    wait_for(lambda: daemon.finished() == 2, 120, "both files to be accounted for")
    found = assert_each_once(daemon, ["poison.jpg", "fine.jpg"])
    assert found["fine.jpg"].disposition in ("done", "review")
    failed = found["poison.jpg"]
    assert failed.disposition == "failed" and failed.error is not None
    # Every return after a lost child counted on this broker: limit 2 = three deliveries, then the dead letter.
    assert failed.error.message.startswith("gave up after 3 deliveries"), failed.error.message
    assert (tmp_path / "failed" / "poison.jpg").is_file()
    [poison_job] = [e["job"] for e in daemon.events("job_claimed") if e.get("file") == "poison.jpg"]
    assert [e["job"] for e in daemon.events("job_dead_lettered")] == [poison_job]
    assert broker.depth("photo") == broker.depth("dead") == broker.depth("results.t1") == 0
    assert daemon.stop() == 0


def _rabbitmqctl(*args: str) -> None:
    import shutil
    import subprocess

    tool = shutil.which("rabbitmqctl")
    if tool is None:
        pytest.skip("rabbitmqctl is needed to restart the broker")
    subprocess.run([tool, *args], check=True, capture_output=True, timeout=120)


@pytest.mark.broker_alone
def test_a_broker_restart_mid_run_loses_nothing_and_publishes_nothing_twice(tmp_path, broker, daemons, workers):
    daemon = daemons(tmp_path, extra=broker.dispatch_toml())
    worker = workers(daemon, "w1", env={"VEIL_TEST_SLOW_S": "4"}).start()
    daemon.start().wait_ready()
    worker.wait_ready()
    names = ["slow.jpg"] + [f"p{i}.jpg" for i in range(8)]
    write_image(daemon.ingest / "slow.jpg", seed=10)
    wait_for(lambda: _staged(daemon, "partial.tmp"), 60, "the slow job to start")
    for i, name in enumerate(names[1:]):
        write_image(daemon.ingest / name, seed=20 + i)
    wait_for(lambda: len(daemon.events("job_enqueued")) >= 3, 30, "more jobs on the broker")
    _rabbitmqctl("stop_app")  # mid-job, with jobs queued and results on their way
    try:
        time.sleep(2)  # the broker stays down a while: enqueues and answers must wait, not fail
    finally:
        _rabbitmqctl("start_app")

    wait_for(lambda: daemon.finished() == len(names), 180, "every file to be published after the restart")
    assert_each_once(daemon, names)
    assert daemon.events("broker_connection_lost"), "veil serve saw the broker go"
    assert wait_for(lambda: broker.depth("photo") == broker.depth("dead") == broker.depth("results.t1") == 0, 30,
                    "empty queues")
    assert daemon.stop() == 0
