"""`veil serve` as systemd runs it: the sd_notify sequence on a real socket, reloads on SIGHUP (and a bad
configuration refused), missing models refused before READY, instances on one ingest, and ``veil status``.

The harness (the ``Daemon``, ``daemons`` and file helpers) lives in tests/integration/serve_harness.py; the
other scenarios in test_serve_intake.py, test_serve_masking.py and test_serve_recovery.py.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.integration.serve_harness import REPO, assert_each_once, wait_for, write_image

pytestmark = pytest.mark.usefixtures("models_installed")


def test_sd_notify_sequence_on_a_real_socket(tmp_path, daemons):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = str(tmp_path / "notify.sock")
    sock.bind(address)
    sock.settimeout(0.2)
    messages: list[dict[str, str]] = []

    def receive() -> None:
        try:
            while True:
                raw = sock.recv(65536).decode()
                messages.append(dict(line.split("=", 1) for line in raw.split("\n") if "=" in line))
        except socket.timeout:
            pass

    def seen(key: str, value: str | None = None, after: int = 0) -> int | None:
        receive()
        for index, message in enumerate(messages[after:], after):
            if key in message and (value is None or value in message[key]):
                return index + 1  # 1-based, so a match at 0 is truthy
        return None

    daemon = daemons(tmp_path)
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"}
    state = tmp_path / "state-trial"
    daemon.start(env={**env, "VEIL_SERVICE__STATE_DIR": str(state), "VEIL_SERVICE__INSTANCE": "trial",
                      "VEIL_WATCH__SETTLE_S": "0.2", "VEIL_SERVICE__LOG_FILE_NAMES": "true"},
                 args=["--ingest", str(daemon.ingest), "--output", str(daemon.output)])  # a trial: no file
    ready = wait_for(lambda: seen("READY", "1"), 120, "READY=1")
    assert seen("STATUS", "loading models") < ready  # models load before READY
    assert messages[ready - 1]["MAINPID"] == str(daemon.proc.pid)
    first_ping = wait_for(lambda: seen("WATCHDOG", "1", after=ready), 10, "WATCHDOG=1")
    wait_for(lambda: seen("WATCHDOG", "1", after=first_ping), 10, "a second WATCHDOG=1")
    write_image(daemon.ingest / "a.jpg", 1)
    wait_for(lambda: seen("STATUS", "done 1") or seen("STATUS", "review 1"), 60, "STATUS with the count")
    assert "queue" in messages[-1].get("STATUS", "queue") and "in flight" in messages[ready - 1]["STATUS"]
    mark = len(messages)
    daemon.proc.send_signal(signal.SIGHUP)
    reloading = wait_for(lambda: seen("RELOADING", "1", after=mark), 30, "RELOADING=1")
    sent_at_us = int(messages[reloading - 1]["MONOTONIC_USEC"])  # Type=notify-reload ignores RELOADING without it
    assert 0 < time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000 - sent_at_us < 60_000_000
    wait_for(lambda: seen("READY", "1", after=reloading), 120, "READY=1 after the reload")
    mark = len(messages)
    assert daemon.stop() == 0
    assert seen("STOPPING", "1", after=mark)
    assert (tmp_path / "out" / "a.jpg.veil.json").exists() or (tmp_path / "review" / "a.jpg.veil.json").exists()


def test_two_daemons_on_one_ingest_never_process_a_file_twice(tmp_path, daemons):
    a = daemons(tmp_path, instance="a").start()
    b = daemons(tmp_path, instance="b").start()
    a.wait_ready()
    b.wait_ready()
    names = []
    for i in range(60):
        write_image(a.ingest / f"img{i:02d}.jpg", i)
        names.append(f"img{i:02d}.jpg")
    wait_for(lambda: a.finished() + b.finished() >= len(names), 300, "both daemons to finish")
    # a file is published before its job_finished event is logged: the test once stopped in between
    wait_for(lambda: len(a.events("job_finished")) + len(b.events("job_finished")) >= len(names), 60, "every job_finished")
    assert a.stop() == 0 and b.stop() == 0
    assert_each_once(a, names)
    finished = [e["file"] for d in (a, b) for e in d.events("job_finished")]
    assert sorted(finished) == sorted(names)  # each processed once, by one of them
    assert not any(e["duplicate"] for d in (a, b) for e in d.events("job_finished"))


def test_same_instance_name_twice_is_refused(tmp_path, daemons):
    first = daemons(tmp_path, instance="same").start().wait_ready()
    second = daemons(tmp_path, instance="same")
    second.state = tmp_path / "state-other"
    second.start()
    assert second.proc.wait(120) == 1
    assert "instance name 'same'" in second.log_path.read_text()
    assert first.proc.poll() is None
    assert first.stop() == 0


def test_veil_status_shows_the_running_service(tmp_path, daemons):
    daemon = daemons(tmp_path).start().wait_ready()
    write_image(daemon.ingest / "a.jpg", 3)
    wait_for(lambda: daemon.finished() == 1, 60, "one file")
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "status", "--state-dir", str(daemon.state)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"instance t1 (pid {daemon.proc.pid}): running" in result.stdout
    assert "throughput: 1 files in the last minute" in result.stdout
    assert daemon.stop() == 0
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "status", "--state-dir", str(daemon.state)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 3 and "): stopped at " in result.stdout  # a clean stop says so, with when


def test_sighup_reloads_and_an_invalid_file_is_refused(tmp_path, daemons):
    daemon = daemons(tmp_path).start().wait_ready()
    original = daemon.config.read_text()
    second_in, second_out = tmp_path / "in2", tmp_path / "out2"
    daemon.config.write_text(original + f"""
[[folders]]
name = "second"
ingest = "{second_in}"
output = "{second_out}"
""")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("reloaded"), 120, "the reload")
    write_image(second_in / "new-folder.jpg", 5)
    wait_for(lambda: (second_out / "new-folder.jpg.veil.json").exists(), 60, "a file in the added folder")

    daemon.config.write_text(original.replace("workers = 1", "workers = 'lots'"))
    daemon.proc.send_signal(signal.SIGHUP)
    [refused] = wait_for(lambda: daemon.events("reload_refused"), 30, "the refusal")
    assert "service.workers" in refused["error"] and "'lots'" in refused["error"]
    write_image(daemon.ingest / "after.jpg", 6)  # still running, with the previous configuration
    wait_for(lambda: (tmp_path / "out" / "after.jpg.veil.json").exists(), 60, "a file after the refusal")
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_missing_models_refuse_to_start_without_ready(tmp_path, daemons):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = str(tmp_path / "notify.sock")
    sock.bind(address)
    daemon = daemons(tmp_path, extra="")
    daemon.config.write_text(daemon.config.read_text().replace(
        "[watch]", f'model_dir = "{tmp_path / "no-models"}"\n[watch]'))
    daemon.start(env={"NOTIFY_SOCKET": address})
    assert daemon.proc.wait(120) == 1
    [failed] = daemon.events("startup_failed")
    assert "could not start" in failed["error"] and "centerface" in failed["error"]
    sock.settimeout(0.5)
    received = []
    try:
        while True:
            received.append(sock.recv(65536).decode())
    except socket.timeout:
        pass
    assert not any("READY=1" in m for m in received)
    assert any("ERRNO=1" in m for m in received)
