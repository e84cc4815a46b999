"""The service confined: run as an unprivileged user with the unit's umask, it fails an unreadable input,
keeps a job it cannot publish until the folder is fixed, and holds no IP socket; the shipped systemd unit is
hardened (and scores SAFE with ``systemd-analyze security`` where that can run offline)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pipeline.qc import QCReport

from daemon.config.settings import load_settings

from tests.integration.serve_harness import MODELS, REPO, Daemon, files, sidecars, wait_for, write_image

NOBODY = 65534


def _interpreter_for_nobody() -> tuple[str, dict[str, str]] | None:
    """This venv's Python if the unprivileged user may run it; else the system's Python of the same version
    with this venv's packages (a venv under /root, made by pyenv, is out of that user's reach)."""
    candidates = [(sys.executable, {})]
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system:
        paths = [p for p in sys.path if p.endswith("site-packages")] + [str(REPO)]
        candidates.append((system, {"PYTHONPATH": os.pathsep.join(paths)}))
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python, env in candidates:
        try:
            result = subprocess.run([python, "-c", "import sys, onnxruntime, daemon.cli; print('%d.%d' % sys.version_info[:2])"],
                                    user=NOBODY, group=NOBODY, extra_groups=[], env={**os.environ, **env},
                                    capture_output=True, text=True, cwd="/", timeout=120)
        except PermissionError:
            continue
        if result.returncode == 0 and result.stdout.strip() == want:
            return python, env
    return None


class UnprivilegedDaemon(Daemon):
    """`veil serve` as an unprivileged user (as under systemd's User=veil), with the unit's UMask=0027."""

    def start(self, env=None, args=None):
        found = _interpreter_for_nobody()
        if found is None:
            pytest.skip("no Python with Veil's packages that an unprivileged user can run")
        python, python_env = found
        self.log_handle = open(self.log_path, "ab")
        full_env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        full_env.update(HOME=str(self.root / "home"), **python_env, **(env or {}))
        command = [python, "-m", "daemon.cli", "serve", "--config", str(self.config)]
        self.proc = subprocess.Popen(command, cwd=REPO, env=full_env, stdout=self.log_handle, stderr=self.log_handle,
                                     user=NOBODY, group=NOBODY, extra_groups=[], umask=0o027)
        return self


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _inet_inodes() -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        inodes.update(line.split()[9] for line in lines if len(line.split()) > 9)
    return inodes


@pytest.fixture
def shared_tmp():
    """A folder the unprivileged user can reach (pytest's own tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="veil-unpriv-"))
    base.chmod(0o755)
    yield base
    if not os.environ.get("VEIL_TEST_KEEP"):
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the daemon as another user")
def test_unprivileged_service_unreadable_input_unwritable_output_umask_and_no_listener(shared_tmp):
    root = shared_tmp
    daemon = UnprivilegedDaemon(root, settle_s=0.3)
    config = daemon.config.read_text().replace("[watch]", f'model_dir = "{MODELS}"\n[watch]')
    daemon.config.write_text(config)  # the system Python's prefix holds no models: name them
    [folder] = load_settings(daemon.config).folders
    for path in (folder.ingest, *folder.destinations(), root / "home", daemon.state):
        path.mkdir()
        os.chown(path, NOBODY, NOBODY)
    os.chown(root / "out", 0, 0)  # owned by root, mode 755: the service cannot write its results there
    daemon.start()
    try:
        daemon.wait_ready()
        write_image(root / "good.jpg", 1)
        os.chown(root / "good.jpg", NOBODY, NOBODY)
        os.rename(root / "good.jpg", daemon.ingest / "good.jpg")
        secret = daemon.ingest / ".unreadable.jpg"
        write_image(secret, 2)
        secret.chmod(0o000)  # owned by root, mode 000: the service may move it but never read it
        os.rename(secret, daemon.ingest / "unreadable.jpg")

        wait_for(lambda: (root / "failed" / "unreadable.jpg.veil.json").exists(), 40, "the unreadable file's sidecar")
        wait_for(lambda: daemon.events("publish_failed"), 120, "a refused write into the output folder")
        assert daemon.proc.poll() is None
        assert not sidecars(root / "out") and not files(root / "originals")  # nothing published, nothing lost
        claimed = daemon.ingest / ".veil" / "processing" / "t1"
        assert any(p.name == "good.jpg" for p in claimed.rglob("*")), "the blocked job must stay claimed"
        status = wait_for(lambda: next((st for st in [daemon.status()] if st and any(
            e["kind"] == "publish" for e in st["last_errors"])), None), 30, "the error in the status file")

        # No network listener: none of the service's sockets (nor its workers') is an IP socket.
        pids = [daemon.proc.pid] + [w["pid"] for w in status["workers"] if w["pid"]]
        for pid in pids:
            assert os.stat(f"/proc/{pid}").st_uid == NOBODY
            assert not _socket_inodes(pid) & _inet_inodes(), f"process {pid} holds an IP socket"

        os.chown(root / "out", NOBODY, NOBODY)  # the operator fixes the folder and reloads (or waits 30 s)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (root / "out" / "good.jpg.veil.json").exists(), 120, "the result after the fix")
    finally:
        if daemon.proc.poll() is None:
            daemon.stop()
    failed = QCReport.from_json((root / "failed" / "unreadable.jpg.veil.json").read_bytes())
    assert failed.disposition == "failed" and "Permission denied" in failed.error.message
    assert stat.S_IMODE(os.stat(root / "failed" / "unreadable.jpg").st_mode) == 0  # moved as it was, unread
    # Files the service creates follow the umask: nothing for others (moved originals keep their own mode).
    created = [*(root / "out").rglob("*"), *(root / "failed").glob("*.veil.json"), daemon.ingest / ".veil"]
    assert len(created) >= 4
    for path in created:
        assert stat.S_IMODE(path.stat().st_mode) & 0o027 == 0, (path, oct(path.stat().st_mode))
    assert files(daemon.ingest) == []


UNIT = REPO / "systemd" / "veil.service"


def _unit_settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_systemd_unit_is_hardened_and_scores_ok_offline():
    unit = _unit_settings()
    # A dedicated unprivileged user, no capabilities, the unit's umask, and no network at all.
    assert unit["User"] == ["veil"] and unit["Group"] == ["veil"]
    assert unit["CapabilityBoundingSet"] == [""] and unit["AmbientCapabilities"] == [""]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["UMask"] == ["0027"]
    assert unit["PrivateNetwork"] == ["yes"] and unit["IPAddressDeny"] == ["any"]
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert unit["ProtectSystem"] == ["strict"] and unit["ProtectHome"] == ["yes"]
    # System calls and memory (run under, with veil process and veil serve, in test_unit_filter.py).
    assert unit["SystemCallFilter"] == ["@system-service", "~@privileged", "@chown"]
    assert "SystemCallErrorNumber" not in unit  # a refused call kills the process: nothing half-done goes on
    assert unit["MemoryDenyWriteExecute"] == ["yes"] and unit["SystemCallArchitectures"] == ["native"]
    assert unit["ProtectProc"] == ["invisible"] and "ProcSubset" not in unit  # onnxruntime reads /proc/cpuinfo
    assert unit["PrivateMounts"] == ["yes"] and unit["RemoveIPC"] == ["yes"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=120)
    if "Overall exposure level" not in result.stdout:
        pytest.skip(f"this systemd-analyze cannot score a unit file offline: {result.stderr.strip()[:200]}")
    line = next(l for l in result.stdout.splitlines() if "Overall exposure level" in l)
    score = float(line.split(":")[1].split()[0])
    assert score <= 2.0, line  # "SAFE" is below 2.0; the shipped unit scores 0.6 with systemd 252
