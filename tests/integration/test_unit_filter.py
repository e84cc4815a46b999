"""The system-call filter of systemd/veil.service, proven on the real commands: ``veil process`` (default
settings, both models) on real photos and a real clip, and ``veil serve`` on the same files, run under the unit's
own ``SystemCallFilter=`` (expanded by this machine's systemd-analyze), ``MemoryDenyWriteExecute=`` and
``RestrictAddressFamilies=``, applied with libseccomp (tests/integration/seccomp_jail.py), give what they give
without it. A filter that kills the service on its first video would be worse than none.

The mounts and namespaces of the unit are not emulated here; docs/security.md says what only a real systemd shows.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pillow_heif
import pytest
from PIL import Image

from pipeline.qc import SIDECAR_SUFFIX, QCReport

from tests.conftest import eval_set, missing, require
from tests.integration.seccomp_jail import Policy, systemd_analyze, unit_policy
from tests.integration.serve_harness import SHIPPED_PROFILE, Daemon, assert_each_once, wait_for

pytestmark = [pytest.mark.usefixtures("models_installed"), pytest.mark.timeout(400)]

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "veil.service"
VEIL = [sys.executable, "-m", "daemon.cli"]
# Keys of the sidecar that measure time, not what was done.
VOLATILE = {"created_at", "processing_seconds", "stage_seconds"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    analyze = systemd_analyze()
    if analyze is None:
        missing("systemd-analyze (Debian package 'systemd', listed in install.sh)")
    try:
        import pyseccomp  # noqa: F401 - libseccomp must load here, before the child needs it
    except (ImportError, RuntimeError) as error:
        missing(f"pyseccomp over libseccomp2 (pip install -e .[test]): {error}")
    return unit_policy(UNIT, analyze).save(tmp_path_factory.mktemp("policy") / "policy.json")


def jailed(policy: Path, command: list[str]) -> list[str]:
    return [sys.executable, "-m", "tests.integration.seccomp_jail", str(policy), "--", *command]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_the_allow_list_is_systemds_system_service_less_privileged_but_chown(policy):
    allowed = set(Policy.load(policy).allow)
    # What Veil's stack is seen to call (strace of veil process and serve), all inside @system-service ...
    assert {"read", "mmap", "mprotect", "clone3", "futex", "execve", "mbind", "sched_setaffinity", "prctl",
            "inotify_add_watch", "socket", "sendto", "rename", "getdents64"} <= allowed
    assert {"fchown", "chown"} <= allowed  # @chown, taken back after ~@privileged: SQLite run as root
    # ... and what the unit keeps out: @privileged, @mount, @module, @reboot, @swap, @raw-io, @debug.
    assert not {"setuid", "setgroups", "capset", "chroot", "mount", "init_module", "reboot", "swapoff",
                "ioperm", "ptrace"} & allowed
    assert Policy.load(policy).error_number is None  # a refused call kills: nothing half-done goes on
    assert Policy.load(policy).deny_write_execute
    assert Policy.load(policy).address_families == (socket.AF_UNIX,)


# Run inside the jail: what the filter refuses must really be refused there.
PROBE = """
import ctypes, errno, mmap, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
print("mdwe", libc.prctl(66, 0, 0, 0, 0))  # PR_GET_MDWE: -1 on kernels before 6.3
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("write+execute mapped")
except OSError as error:
    print("write+execute", errno.errorcode[error.errno])
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    print("inet opened")
except OSError as error:
    print("inet", errno.errorcode[error.errno])
print("calling", sys.argv[1], flush=True)
libc.syscall(int(sys.argv[2]), 0)  # swapoff(NULL): harmless even if it ran (EFAULT or EPERM)
print("survived")
"""


def test_the_filter_is_active_in_the_child_and_absent_without_it(policy):
    import pyseccomp

    assert "swapoff" not in Policy.load(policy).allow
    number = str(pyseccomp.resolve_syscall(pyseccomp.system_arch(), "swapoff"))
    free = run([sys.executable, "-c", PROBE, "swapoff", number])
    assert free.returncode == 0 and "survived" in free.stdout, free.stderr
    assert "write+execute mapped" in free.stdout and "inet opened" in free.stdout
    confined = run(jailed(policy, [sys.executable, "-c", PROBE, "swapoff", number]))
    assert confined.returncode == -signal.SIGSYS, (confined.returncode, confined.stdout, confined.stderr)
    assert "calling swapoff" in confined.stdout and "survived" not in confined.stdout
    assert "write+execute EPERM" in confined.stdout and "inet EAFNOSUPPORT" in confined.stdout
    if "mdwe 0" in free.stdout:  # this kernel has PR_SET_MDWE (6.3+): the jail sets it as newer systemd does
        assert "mdwe 1" in confined.stdout, confined.stdout


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Two photos of faces, two of plates (real, from ../shared/eval: for plates the first, 1280x720, and the
    smallest, 326x249, which the plate model sees tiled), the first again as a phone's HEIC (libheif decodes
    it, x265 encodes the result) and a real 16-frame clip with sound."""
    folder = tmp_path_factory.mktemp("inputs")
    for name in ("dlib_faces_voc", "openalpr_endtoend"):
        source = eval_set(name)
        images = json.loads((source / "annotations.json").read_text())["images"]
        chosen = images[:2] if name == "dlib_faces_voc" else [images[0], min(images, key=lambda i: i["width"] * i["height"])]
        for image in chosen:
            shutil.copy(source / "images" / image["file_name"], folder / f"{name}-{Path(image['file_name']).name}")
        if name == "openalpr_endtoend":
            pillow_heif.register_heif_opener()
            with Image.open(source / "images" / images[0]["file_name"]) as photo:
                photo.convert("RGB").save(folder / f"{name}-phone.heic", quality=90)
    clip(folder / "clip.mp4")
    return folder


def clip(path: Path) -> None:
    """A moving-camera clip over a group photo (pipeline/eval/video.py), with an AAC track added by ffmpeg."""
    from pipeline.eval.video import load_specs, render_clip
    from pipeline.records import ObjectClass

    ffmpeg = shutil.which("ffmpeg")
    require(ffmpeg is not None, "ffmpeg (Debian package 'ffmpeg', listed in install.sh)")
    spec = load_specs(eval_set("dlib_faces_voc"), (ObjectClass.FACE,))[0]
    silent = path.with_name("silent.mp4")
    render_clip(spec, silent, size=(480, 270), frames=16, seed=2)
    subprocess.run([str(ffmpeg), "-loglevel", "error", "-y", "-i", str(silent), "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-shortest", "-c:v", "copy", "-c:a", "aac", str(path)],
                   check=True, timeout=60)
    silent.unlink()


@pytest.fixture(scope="module")
def unconfined(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unconfined") / "out"
    result = run([*VEIL, "process", str(inputs), "-o", str(out)])
    assert result.returncode == 0, result.stderr
    return out


def stable(value: Any) -> Any:
    """A sidecar less the keys that measure time."""
    if isinstance(value, dict):
        return {key: stable(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def published(out: Path) -> dict[str, Any]:
    """Every file under ``out``: sidecars as their stable content, the rest as a digest of its bytes (a .gz
    companion of its uncompressed bytes: gzip's header carries a time)."""
    found: dict[str, Any] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = path.relative_to(out).as_posix()
        if name.endswith(SIDECAR_SUFFIX):
            found[name] = stable(json.loads(path.read_text()))
        else:
            data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
            found[name] = hashlib.sha256(data).hexdigest()
    return found


def test_veil_process_under_the_filter_publishes_what_it_publishes_without(policy, inputs, unconfined, tmp_path):
    expected = published(unconfined)
    reports = {path.name: QCReport.from_json(path.read_bytes()) for path in unconfined.glob("*" + SIDECAR_SUFFIX)}
    # The run without the filter did the real work: six files, both models, faces and plates found, sound kept.
    assert len(reports) == 6 and all(r.disposition in ("done", "review") for r in reports.values())
    assert all({m.name for m in r.models} == {"centerface", "platedet"} for r in reports.values())
    assert all(r.counts["face"] > 0 for name, r in reports.items() if name.startswith(("dlib", "clip")))
    assert all(r.counts["license_plate"] > 0 for name, r in reports.items() if name.startswith("openalpr"))
    video = reports["clip.mp4" + SIDECAR_SUFFIX]
    assert video.video is not None and video.companions
    assert video.video["frames_written"] == 16 and video.video["audio_streams"] == ["aac"]

    out = tmp_path / "out"
    result = run(jailed(policy, [*VEIL, "process", str(inputs), "-o", str(out)]))
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    confined = published(out)
    assert sorted(confined) == sorted(expected)
    # The encoded video alone may differ: see same_video(). Every frame's regions are in the companion.
    for name in ("clip.mp4", "clip.mp4" + SIDECAR_SUFFIX):
        for report in (expected, confined):
            report[name] = without_output_digest(report[name])
    for name, value in expected.items():
        assert confined[name] == value, f"{name} differs under the filter"
    same_video(unconfined / "clip.mp4", out / "clip.mp4")


def without_output_digest(value: Any) -> Any:
    if isinstance(value, dict):
        return {**value, "output": {k: v for k, v in value["output"].items() if k not in ("sha256", "size_bytes")}}
    return None  # the video's own digest


def decoded(path: Path) -> tuple[list[int], list[np.ndarray], list[bytes]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    with av.open(str(path)) as container:
        audio = [bytes(packet) for packet in container.demux(audio=0) if packet.size]
    return [f.pts for f in frames], [f.to_ndarray(format="gray").astype(np.int16) for f in frames], audio


def same_video(expected: Path, found: Path) -> None:
    """The same frames at the same times, the same sound, and pixels equal up to the encoder's own variation.

    Veil's encoding is not bit-for-bit repeatable: without any filter, identical masked frames handed to the
    video writer decoded to different pixels now and then (about one run in eight on this machine; up to 29
    grey levels on under 1% of a frame's pixels). So the masks are compared exactly (the companion, above) and
    the pixels within that."""
    pts, frames, audio = decoded(expected)
    found_pts, found_frames, found_audio = decoded(found)
    assert found_pts == pts and len(frames) == 16
    assert found_audio == audio and audio  # the sound is copied, packet for packet
    for index, (want, got) in enumerate(zip(frames, found_frames)):
        off = np.abs(want - got) > 4
        # 2.04% was seen once (the last frame, full suite at faf9ae9); the cause is not found (issue notes)
        assert off.mean() < 0.05, f"frame {index}: {off.mean():.2%} of the pixels differ"


def test_veil_serve_under_the_filter_notifies_reloads_and_publishes(policy, inputs, unconfined, tmp_path, daemons):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    messages: list[str] = []

    def said(text: str, *, alive: bool = True) -> int:
        """How many notifications carried the line ``text`` (and, while ``alive``, that veil serve still runs)."""
        assert daemon.proc is not None
        assert not alive or daemon.proc.poll() is None, f"veil serve ended: {daemon.proc.poll()}"  # -31: SIGSYS
        try:
            while True:
                messages.append(notify.recv(65536).decode())
        except socket.timeout:
            pass
        return sum(text in message.split("\n") for message in messages)

    daemon: Daemon = daemons(tmp_path, profile=SHIPPED_PROFILE)
    daemon.launcher = jailed(policy, [])  # ... -- python -m daemon.cli serve
    daemon.start(env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"})
    wait_for(lambda: said("READY=1"), 120, "READY=1")
    names = ["dlib_faces_voc-2007_007763.jpg", "openalpr_endtoend-AYO9034.jpg", "openalpr_endtoend-phone.heic",
             "clip.mp4"]
    daemon.ingest.mkdir(parents=True, exist_ok=True)
    for name in names:  # copied under a hidden name, then renamed: complete on arrival
        shutil.copy(inputs / name, daemon.ingest / f".{name}.part")
        (daemon.ingest / f".{name}.part").rename(daemon.ingest / name)
    # Each wait reads the notifications too: a full socket queue would block the daemon's next one.
    wait_for(lambda: said("READY=1") and daemon.finished() == len(names), 180, "the four files")
    daemon.proc.send_signal(signal.SIGHUP)  # ExecReload=: the workers are stopped and spawned again
    wait_for(lambda: said("READY=1") == 2 and daemon.events("reloaded"), 120, "the reload")
    assert said("WATCHDOG=1") >= 1
    assert daemon.stop() == 0, daemon.log_path.read_text()[-3000:]
    assert said("STOPPING=1", alive=False) == 1 and said("READY=1", alive=False) == 2  # the reload's READY too
    reports = assert_each_once(daemon, names)
    without = published(unconfined)
    for name in names:
        assert reports[name].disposition == without[name + SIDECAR_SUFFIX]["disposition"], name
        assert reports[name].error is None
    # Nothing went wrong on the way: no worker replaced, no inotify fallen back to polling, no failed job.
    assert [e for e in daemon.events() if e.get("level") in ("warning", "error", "critical")] == []
