"""The Celery backend across restarts and busy workers, on the real RabbitMQ and models: a claim that
`veil serve` never enqueued (killed in between) is enqueued at the next start; a job enqueued twice (once
before the kill, once again at the restart) is published once; a photo never waits behind a video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from daemon.config.settings import load_settings
from daemon.intake.jobs import ClaimArea
from daemon.intake.stability import StableFile

from tests.integration.broker_harness import broker, workers  # noqa: F401 - fixtures
from tests.integration.serve_harness import (  # noqa: F401 - fixtures
    REPO,
    assert_each_once,
    daemons,
    models_installed,
    wait_for,
    write_image,
    write_video,
)

pytestmark = pytest.mark.usefixtures("models_installed")


def _claim_without_enqueue(daemon, name: str) -> str:
    """What `veil serve` leaves when killed between its claim (an atomic rename) and the enqueue."""
    settings = load_settings(daemon.config)
    area = ClaimArea(settings.folders[0], daemon.instance)
    path = daemon.ingest / name
    st = path.stat()
    job = area.claim(StableFile(path, st.st_size, st.st_mtime_ns))
    assert job is not None and not path.exists()
    return job.id


def test_claims_left_by_a_killed_serve_are_enqueued_again_and_published_once(tmp_path, broker, daemons, workers):
    daemon = daemons(tmp_path, extra=broker.dispatch_toml())
    daemon.start().wait_ready()
    write_image(daemon.ingest / "enqueued.jpg", seed=1)  # no worker yet: it waits on the broker
    wait_for(lambda: daemon.events("job_enqueued"), 30, "the first job to be enqueued")
    assert wait_for(lambda: broker.depth("photo") == 1, 10, "the job on the broker")
    daemon.kill()
    write_image(daemon.ingest / "claimed.jpg", seed=2)
    claimed = _claim_without_enqueue(daemon, "claimed.jpg")

    daemon.start().wait_ready()  # recovery enqueues both claims: "enqueued.jpg" is now on the broker twice
    worker = workers(daemon, "w1").start()
    wait_for(lambda: daemon.finished() == 2, 120, "both files to be published")
    processing = daemon.ingest / ".veil" / "processing" / daemon.instance
    # published first, then the claim is removed: the test once looked in between
    wait_for(lambda: not processing.exists() or not any(processing.iterdir()), 30, "the claims to be removed")
    assert_each_once(daemon, ["enqueued.jpg", "claimed.jpg"])
    assert claimed in [e["job"] for e in daemon.events("job_enqueued")]
    wait_for(lambda: broker.depth("photo") == 0, 30, "the duplicate message to be consumed")
    statuses = [e["status"] for e in worker.events("job_delivered")]
    # the duplicate found its job published (answered again, ignored) or already finished and gone
    assert len(statuses) == 3 and set(statuses) <= {"gone", "published"}, statuses
    assert daemon.stop() == 0


def _fleet(daemon) -> dict:
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "status", "--fleet", "--json", "--config",
                             str(daemon.config)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_photo_is_done_in_seconds_while_the_video_worker_is_busy(tmp_path, broker, daemons, workers):
    daemon = daemons(tmp_path, extra=broker.dispatch_toml())
    video = workers(daemon, "video", queues="video", env={"VEIL_TEST_SLOW_S": "12"}).start()
    photo = workers(daemon, "photo", queues="photo").start()
    daemon.start().wait_ready()
    video.wait_ready()
    photo.wait_ready()
    write_video(daemon.ingest / "slow.mp4", seconds=1.0)
    processing = daemon.ingest / ".veil" / "processing" / daemon.instance
    wait_for(lambda: list(processing.glob("*/out/partial.tmp")), 60, "the video job to start")
    write_image(daemon.ingest / "quick.jpg", seed=4)
    dropped = time.monotonic()

    wait_for(lambda: (tmp_path / "out" / "quick.jpg.veil.json").exists()
             or (tmp_path / "review" / "quick.jpg.veil.json").exists(), 10, "the photo, beside the busy video")
    assert time.monotonic() - dropped < 10
    assert not (tmp_path / "out" / "slow.mp4.veil.json").exists(), "the video was still running"
    view = _fleet(daemon)  # veil status --fleet, while the video runs
    nodes = {node["node"]: node for node in view["workers"]}
    assert sorted(nodes) == ["photo@testhost", "video@testhost"] and nodes["video@testhost"]["host"] == "testhost"
    [running] = nodes["video@testhost"]["jobs"]
    assert running["queue"] == f"{broker.prefix}.video" and running["started_at"] is not None
    assert nodes["photo@testhost"]["jobs"] == []
    assert view["queues"][f"{broker.prefix}.dead"] == {"ready": 0, "consumers": 1}
    assert [e["status"] for e in photo.events("job_delivered")] == ["published"]
    wait_for(lambda: daemon.finished() == 2, 90, "the video too")
    assert_each_once(daemon, ["slow.mp4", "quick.jpg"])
    assert [e["status"] for e in video.events("job_delivered")] == ["published"]
    assert daemon.stop() == 0
