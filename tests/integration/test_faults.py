"""Faults injected into a real `veil serve`: kill -9 in a loop, a full output disk, broken models, the output
folder removed, the wall clock jumping, a slow share. After each, every file is accounted for exactly once
and nothing unmasked is published. The long soak and the 2,000-file load are in bench/reliability.py.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.qc import QCReport

from tests.integration.serve_harness import (
    MODELS,
    Daemon,
    assert_each_once,
    files,
    sidecars,
    wait_for,
    write_image,
    write_video,
)

FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def _worker_pids(daemon: Daemon) -> list[int]:
    status = daemon.status() or {}
    return [w["pid"] for w in status.get("workers", []) if w.get("pid")]


def _published(root: Path) -> list[str]:
    return sidecars(root / "out") + sidecars(root / "review") + sidecars(root / "failed")


def test_kill_9_of_daemon_and_workers_in_a_loop_loses_and_duplicates_nothing(tmp_path, daemons):
    rng = random.Random(5)  # the kill points vary, reproducibly
    names: list[str] = []
    ingest = tmp_path / "in"
    for i in range(24):
        write_image(ingest / f"img{i:02d}.jpg", i)
        names.append(f"img{i:02d}.jpg")
    write_video(ingest / "clip.mp4", seconds=1.0)
    names.append("clip.mp4")
    kills = 0
    for round_ in range(3):
        daemon = daemons(tmp_path, instance="t1", workers=2).start().wait_ready()
        before = len(_published(tmp_path))
        # Let it get somewhere first (a random amount of finished work), then kill without warning.
        target = before + rng.randint(0, 3)
        wait_for(lambda: len(_published(tmp_path)) >= min(target, len(names)) or daemon.finished() >= len(names),
                 120, "some progress before the kill")
        if round_ % 2:
            workers = _worker_pids(daemon)
            if workers:
                os.kill(rng.choice(workers), signal.SIGKILL)  # a worker first: its job is retried
                kills += 1
        daemon.kill()
        kills += 1
    # The one kill point too narrow to hit by chance: after a claim made its job folder, before its journal.
    (ingest / ".veil" / "processing" / "t1" / "0123456789abcdef" / "input").mkdir(parents=True)
    last = daemons(tmp_path, instance="t1", workers=2).start().wait_ready()
    wait_for(lambda: len(_published(tmp_path)) == len(names) and not files(ingest), 300, "everything after the kills")
    assert last.stop() == 0
    reports = assert_each_once(last, names)
    assert kills >= 4
    assert all(r.disposition in ("done", "review") for r in reports.values())
    assert len(files(tmp_path / "originals")) == len(names)
    # A kill in the middle of a copy leaves a temporary file; the job's next try removes it.
    leftovers = [n for f in ("out", "review", "failed", "originals") for n in files(tmp_path / f) if n.endswith(".veil-tmp")]
    assert leftovers == []


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return result.returncode == 0


def test_output_disk_full_keeps_jobs_until_space_returns(tmp_path, daemons):
    out = tmp_path / "out"
    if os.geteuid() != 0 or not _mount_tmpfs(out, "2m"):
        pytest.skip("cannot mount a small filesystem here")
    try:
        filler = out / ".filler"
        with open(filler, "wb") as handle:  # fill the output disk completely
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError:
                pass
        daemon = daemons(tmp_path, output=out).start().wait_ready()
        names = [f"img{i}.jpg" for i in range(3)]
        for i, name in enumerate(names):
            write_image(daemon.ingest / name, i, size=(320, 240))
        wait_for(lambda: len(daemon.events("publish_failed")) >= 3, 120, "publishing to fail for all three")
        assert "No space left" in daemon.events("publish_failed")[0]["error"]
        assert daemon.proc.poll() is None
        assert sidecars(out) == [] and files(tmp_path / "originals") == []  # nothing half-published, nothing lost
        assert not [p for p in out.iterdir() if p.name != ".filler"], "partial files left in the full folder"
        filler.unlink()  # space returns: the next retry publishes everything
        wait_for(lambda: daemon.finished() == len(names), 120, "publishing after space returned")
        assert daemon.stop() == 0
        reports = assert_each_once(daemon, names)
        for name, report in reports.items():
            assert (out / name).stat().st_size == report.output.size_bytes  # complete files
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_broken_model_refuses_to_start_and_consumes_no_file(tmp_path, daemons, damage):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    model = models / "centerface.onnx"
    if damage == "corrupt":
        data = bytearray(model.read_bytes())
        data[len(data) // 2: len(data) // 2 + 4096] = os.urandom(4096)
        model.write_bytes(bytes(data))
    else:
        model.unlink()
    daemon = daemons(tmp_path)
    daemon.config.write_text(daemon.config.read_text().replace("[watch]", f'model_dir = "{models}"\n[watch]'))
    for i in range(3):
        write_image(daemon.ingest / f"waiting{i}.jpg", i)
    before = {name: (daemon.ingest / name).read_bytes() for name in files(daemon.ingest)}
    daemon.start()
    assert daemon.proc.wait(120) == 1
    [failed] = daemon.events("startup_failed")
    assert "centerface" in failed["error"]
    assert {name: (daemon.ingest / name).read_bytes() for name in files(daemon.ingest)} == before
    assert not (daemon.ingest / ".veil" / "processing" / "t1").exists() or \
        not list((daemon.ingest / ".veil" / "processing" / "t1").iterdir())
    assert _published(tmp_path) == []


def test_output_folder_removed_while_running(tmp_path, daemons):
    daemon = daemons(tmp_path).start().wait_ready()
    write_image(daemon.ingest / "before.jpg", 1)
    wait_for(lambda: daemon.finished() == 1, 60, "the first file")
    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(tmp_path / "review", ignore_errors=True)
    write_image(daemon.ingest / "after" / "a.jpg", 2)
    write_image(daemon.ingest / "after" / "b.jpg", 3)
    wait_for(lambda: daemon.finished() == 3, 60, "the files after the removal")
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0
    published = sidecars(tmp_path / "out") + sidecars(tmp_path / "review")
    assert sorted(published) == ["after/a.jpg.veil.json", "after/b.jpg.veil.json"]  # the folder was made again
    assert len(files(tmp_path / "originals")) == 3


@pytest.mark.skipif(not FAKETIME_LIB.exists(), reason="needs libfaketime (apt install libfaketime)")
def test_wall_clock_jumps_forward_and_back_while_running(tmp_path, daemons):
    clock = tmp_path / "faketime"
    clock.write_text("+0d\n")
    env = {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME_TIMESTAMP_FILE": str(clock), "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}  # an NTP step moves the wall clock only
    daemon = daemons(tmp_path).start(env=env).wait_ready()
    expected_day = {}
    for step, (offset, days) in enumerate((("+1d", 1), ("-2d", -2), ("+0d", 0))):
        clock.write_text(offset + "\n")
        name = f"step{step}.jpg"
        write_image(daemon.ingest / name, step)
        expected_day[name] = days
        wait_for(lambda: daemon.finished() == step + 1, 60, f"the file after the jump to {offset}")
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0
    reports = assert_each_once(daemon, list(expected_day))
    today = datetime.now(timezone.utc)
    for name, days in expected_day.items():  # the service saw each jump (its sidecars are dated by it)
        seen = reports[name].created_at - today
        assert abs(seen - timedelta(days=days)) < timedelta(hours=1), (name, seen)


def test_slow_share_a_throttled_copy_of_a_video_is_taken_once_complete(tmp_path, daemons):
    extra = 'mode = "poll"\npoll_interval_s = 0.2'  # an SMB/NFS share: no inotify events from other machines
    daemon = daemons(tmp_path, settle_s=2.0, extra=extra).start().wait_ready()
    source = tmp_path / "source.mp4"
    write_video(source, seconds=1.0, seed=7)
    data = source.read_bytes()
    target = daemon.ingest / "slow.mp4"
    step = len(data) // 10 + 1
    for offset in range(0, len(data), step):  # 10 chunks, a pause after each (the slow share, not a sync)
        with target.open("ab") as handle:
            handle.write(data[offset: offset + step])
        assert target.exists(), "taken while still being copied"
        time.sleep(0.4)  # the share's throughput itself, well under settle_s: not a synchronisation
    wait_for(lambda: daemon.finished() == 1, 120, "the slowly copied video")
    assert daemon.stop() == 0
    [report] = assert_each_once(daemon, ["slow.mp4"]).values()
    assert report.disposition in ("done", "review") and report.input.size_bytes == len(data)
    assert QCReport.from_json((tmp_path / ("out" if report.disposition == "done" else "review") /
                               "slow.mp4.veil.json").read_bytes()).video is not None
