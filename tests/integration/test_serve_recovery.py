"""Crashes and stops of `veil serve` mid-work: kill -9 of the daemon or of a worker, SIGTERM during a video.
Nothing is lost, nothing published twice, and what the restarted daemon publishes is still masked."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.pixel_check import assert_masked
from tests.integration.serve_harness import (
    SHIPPED_PROFILE,
    assert_each_once,
    files,
    processing_left,
    published_file,
    sidecars,
    video_in_flight,
    wait_for,
    wait_gone,
    write_image,
    write_video,
)

pytestmark = pytest.mark.usefixtures("models_installed")

SLOW_PROFILE = SHIPPED_PROFILE  # faces and plates
# A 10 s clip is about 3 s of work on a quiet machine; a 3 s clip (1 s of work) could finish between the status
# snapshot that shows it in flight and the kill or the stop that follows.
KILL_CLIP_S = 10.0


def test_kill_9_of_the_daemon_mid_video_loses_and_duplicates_nothing(tmp_path, daemons, mixed_scenes):
    first = daemons(tmp_path, profile=SLOW_PROFILE).start().wait_ready()
    write_video(first.ingest / "clip.mp4", seconds=KILL_CLIP_S)
    scenes = {f"img{i}.jpg": scene for i, scene in enumerate(mixed_scenes[:3])}  # real photos: faces and plates
    for name, scene in scenes.items():
        (first.ingest / name).write_bytes(scene.path.read_bytes())
    job = wait_for(lambda: video_in_flight(first, "clip.mp4"), 120, "the video to be in flight")
    first.kill()
    wait_gone(job["pid"])  # its worker dies with it
    published = sidecars(tmp_path / "out") + sidecars(tmp_path / "review")
    assert "clip.mp4.veil.json" not in published
    assert processing_left(first)  # the claimed video waits in the processing area
    second = daemons(tmp_path, profile=SLOW_PROFILE)
    second.start().wait_ready()
    wait_for(lambda: not files(second.ingest) and not processing_left(second)
             and len(sidecars(tmp_path / "out") + sidecars(tmp_path / "review")) == 4, 300,
             "everything to complete after the restart")
    assert second.stop() == 0
    reports = assert_each_once(second, ["clip.mp4", "img0.jpg", "img1.jpg", "img2.jpg"])
    assert reports["clip.mp4"].disposition in ("done", "review")
    assert any(e.get("file") is None for e in second.events("job_recovered"))
    assert len(files(tmp_path / "originals")) == 4
    for name, scene in scenes.items():  # whichever daemon published them, every face and plate is masked
        assert_masked(scene, published_file(tmp_path, name))


def test_kill_9_of_a_worker_mid_video_retries_the_job(tmp_path, daemons):
    daemon = daemons(tmp_path, profile=SLOW_PROFILE).start().wait_ready()
    write_video(daemon.ingest / "clip.mp4", seconds=KILL_CLIP_S)
    job = wait_for(lambda: video_in_flight(daemon, "clip.mp4"), 120, "the video to be in flight")
    os.kill(job["pid"], signal.SIGKILL)
    wait_for(lambda: daemon.finished() == 1, 300, "the retried video")
    status = daemon.status()
    assert daemon.stop() == 0
    reports = assert_each_once(daemon, ["clip.mp4"])
    assert reports["clip.mp4"].disposition in ("done", "review")
    assert status["worker_restarts"] >= 1
    [failure] = daemon.events("job_attempt_failed")
    assert "code -9" in failure["reason"]


def test_sigterm_during_work_stops_cleanly_and_resumes(tmp_path, daemons):
    first = daemons(tmp_path, profile=SLOW_PROFILE, stop_timeout_s=0.5).start().wait_ready()
    write_video(first.ingest / "clip.mp4", seconds=KILL_CLIP_S)
    names = ["clip.mp4"]
    for i in range(5):
        write_image(first.ingest / f"img{i}.jpg", i)
        names.append(f"img{i}.jpg")
    wait_for(lambda: video_in_flight(first, "clip.mp4"), 120, "the video to be in flight")
    started = time.monotonic()
    assert first.stop(deadline_s=60) == 0
    stop_took = time.monotonic() - started
    assert stop_took < 0.5 + 10.0, stop_took  # the grace period plus shutting workers down
    assert any(e["event"] == "job_interrupted" for e in first.events())
    assert "clip.mp4.veil.json" not in sidecars(tmp_path / "out") + sidecars(tmp_path / "review")
    assert not processing_left(first)  # unfinished work was put back into ingest
    assert (first.ingest / "clip.mp4").exists()
    second = daemons(tmp_path, profile=SLOW_PROFILE)
    second.start().wait_ready()
    wait_for(lambda: not files(second.ingest) and not processing_left(second)
             and len(sidecars(tmp_path / "out") + sidecars(tmp_path / "review")) == len(names), 300, "the rest")
    assert second.stop() == 0
    assert_each_once(second, names)
