"""The real daemon for integration tests: `veil serve` as a subprocess with the real models, on temporary
folders, and the helpers that feed it files and read what it published.

Each test polls with a deadline (``wait_for``); nothing sleeps to synchronise. Tests of plumbing alone (file
hand-over, notifications, instances, reloads, markers) use ``FAST_PROFILE`` (faces only) on tiny noise images
(64x48) and claim nothing about masking; videos are a second or two at 160x120, so the suites stay within a few
minutes on two cores. Claims about what the product publishes run ``SHIPPED_PROFILE`` on real photos
(tests/integration/pixel_check.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipeline.qc import SIDECAR_SUFFIX, QCReport

from tests.conftest import require_models

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(sys.prefix) / "share" / "veil" / "models"


@pytest.fixture
def models_installed():
    """For a test module that needs the real models: ``pytestmark = pytest.mark.usefixtures("models_installed")``."""
    require_models()


# The shipped `veil serve` profile: no [profiles] table, so every class at its default thresholds.
SHIPPED_PROFILE = ""

# Faces only, for plumbing tests that claim nothing about masking: the plate model (640x640 input, 2x tiles on
# small photos) is what makes a file cost seconds on CPU. Never evidence for what the product publishes.
FAST_PROFILE = """
[profiles.default.detector]
classes = ["face"]
"""

# A review band from 0.02 to 0.99 under the "strict" review policy: on noise, CenterFace's weak responses land
# in it, so files go to review. Narrowed on purpose, to force review on a noise clip too (the video contact
# sheet); that contact sheets show masked pixels inside every face and plate of real photos is checked in
# test_serve_masking.py.
REVIEW_PROFILE = """
[profiles.default.detector]
classes = ["face"]
[profiles.default.detector.face]
threshold = 0.99
review_floor = 0.02
[profiles.default.review]
policy = "strict"
"""


def wait_for(condition: Callable[[], Any], deadline_s: float, what: str) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.05)  # polling interval, not synchronisation: the condition decides

def write_image(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)

def write_video(path: Path, seconds: float = 1.0, fps: int = 10, seed: int = 0) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = path.with_name(path.name + ".part")  # written under an ignored name, then renamed: a complete file
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        base = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        for i in range(int(seconds * fps)):
            frame = np.roll(base, i * 3, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)

def files(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and ".veil" not in p.relative_to(folder).parts)

def sidecars(root: Path) -> list[str]:
    return [name for name in files(root) if name.endswith(SIDECAR_SUFFIX)]

class Daemon:
    """One `veil serve` process and its folders."""

    def __init__(self, root: Path, *, instance: str = "t1", workers: int = 1, extra: str = "", settle_s: float = 0.3,
                 stop_timeout_s: float = 30.0, profile: str = FAST_PROFILE, ingest: Path | None = None,
                 output: Path | None = None, log_file_names: bool = True, jobs_per_worker: int = 1,
                 heartbeat_timeout_s: float = 30, threads: int = 1, device: str = "cpu") -> None:
        self.root = root
        self.instance = instance
        self.ingest = ingest or root / "in"
        self.output = output or root / "out"
        self.state = root / f"state-{instance}"
        self.config = root / f"veil-{instance}.toml"
        self.log_path = root / f"daemon-{instance}.log"
        self.config.write_text(f"""
[service]
instance = "{instance}"
workers = {workers}
jobs_per_worker = {jobs_per_worker}
devices = ["{device}"]
threads = {threads}
state_dir = "{self.state}"
log_file_names = {str(log_file_names).lower()}
stop_timeout_s = {stop_timeout_s}
heartbeat_timeout_s = {heartbeat_timeout_s}
[watch]
settle_s = {settle_s}
rescan_interval_s = 2.0
{extra}
[[folders]]
ingest = "{self.ingest}"
output = "{self.output}"
{profile}
""")
        self.proc: subprocess.Popen | None = None
        self.launcher: list[str] = []  # a command that execs the one after it (test_unit_filter.py's jail)

    def start(self, env: dict[str, str] | None = None, args: list[str] | None = None) -> "Daemon":
        self.log_handle = open(self.log_path, "ab")
        full_env = {**os.environ, **(env or {})}
        full_env.pop("NOTIFY_SOCKET", None) if env is None or "NOTIFY_SOCKET" not in env else None
        command = [*self.launcher, sys.executable, "-m", "daemon.cli", "serve",
                   *(args or ["--config", str(self.config)])]
        self.proc = subprocess.Popen(command, cwd=REPO, env=full_env, stdout=self.log_handle, stderr=self.log_handle)
        return self

    def status(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.state / f"status-{self.instance}.json").read_text())
        except (OSError, ValueError):
            return None

    def wait_ready(self, deadline_s: float = 120) -> "Daemon":
        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, f"daemon exited: {self.log_path.read_text()}"
            status = self.status()
            return bool(status and status["pid"] == self.proc.pid and status["state"] == "running")

        wait_for(ready, deadline_s, "the daemon to be ready")
        return self

    def finished(self) -> int:
        status = self.status()
        if not status:
            return 0
        counts = status["counts"]
        return counts["done"] + counts["review"] + counts["failed"] + counts["duplicate"]

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                out.append(event)
        return out

    def stop(self, sig: int = signal.SIGTERM, deadline_s: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(deadline_s)
        finally:
            self.log_handle.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)
        self.log_handle.close()

@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def make(*args, **kwargs) -> Daemon:
        daemon = Daemon(*args, **kwargs)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(30)

def assert_each_once(daemon: Daemon, names: list[str], *, root: Path | None = None) -> dict[str, QCReport]:
    """Every input published exactly once (output or review, or failed), with its sidecar; nothing left."""
    root = root or daemon.root
    found: dict[str, QCReport] = {}
    for folder in ("out", "review", "failed"):
        for sidecar in sidecars(root / folder):
            report = QCReport.from_json((root / folder / sidecar).read_bytes())
            name = sidecar[: -len(SIDECAR_SUFFIX)]
            assert (root / folder / name).is_file(), f"sidecar without its file: {folder}/{name}"
            assert report.input.name not in found, f"{report.input.name} published twice"
            found[report.input.name] = report
    assert sorted(found) == sorted(names)
    assert files(daemon.ingest) == [], "ingest is not empty"
    processing = daemon.ingest / ".veil" / "processing" / daemon.instance
    assert not processing.exists() or list(processing.iterdir()) == [], "claimed jobs left over"
    return found

def published_file(root: Path, name: str) -> Path:
    [path] = [root / folder / name for folder in ("out", "review") if (root / folder / name).is_file()]
    return path

def video_in_flight(daemon: Daemon, name: str, min_s: float = 0.5) -> dict | None:
    status = daemon.status()
    for job in (status or {}).get("in_flight", []):
        if job.get("name") == name and job["running_s"] >= min_s:
            return job
    return None

def wait_gone(pid: int, deadline_s: float = 30) -> None:
    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"

    wait_for(gone, deadline_s, f"process {pid} to end")

def processing_left(daemon: Daemon) -> bool:
    processing = daemon.ingest / ".veil" / "processing" / daemon.instance
    return processing.exists() and any(processing.iterdir())
