"""Hostile and broken inputs dropped into a real `veil serve`: each has an expected, documented outcome.

One daemon takes a whole batch (broken files, odd dimensions and pixel formats, odd videos, odd names,
links, FIFOs, device nodes, a dropped directory tree), so the real models load once. Every regular input
must come out exactly once (output, review or failed, with its sidecar); everything that is not a regular
file must stay where it is, unread, and be reported. No sleeps: everything polls with a deadline.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from daemon.config.settings import load_settings
from pipeline.qc import SIDECAR_SUFFIX, QCReport
from tests.integration.test_daemon_serve import (  # noqa: F401 - daemons is a fixture
    MODELS, REPO, REVIEW_PROFILE, Daemon, assert_each_once, daemons, files, sidecars, wait_for, write_image, write_video,
)

W, H = 64, 48


def _noise(seed: int, w: int = W, h: int = H, channels: int = 3) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def _jpeg_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_noise(seed)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_noise(seed)).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but holds a few bytes: decoding it would need GBs."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    body = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def _video_bytes(path: Path, *, seconds: float = 1.0, seed: int = 0) -> bytes:
    write_video(path, seconds=seconds, seed=seed)
    data = path.read_bytes()
    path.unlink()
    return data


def _write_vfr(path: Path) -> None:
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21]  # irregular gaps, in 1/30 s
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        for value in pts:
            frame = av.VideoFrame.from_ndarray(_noise(value, 160, 120), format="rgb24")
            frame.pts, frame.time_base = value, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _write_rotated(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.set_display_rotation(90)
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(_noise(index, 160, 120), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _write_audio_only(path: Path, container_format: str, codec: str) -> None:
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=44100)
        stream.layout = "mono"
        samples = (np.sin(np.arange(44100) / 20.0) * 0.3).astype(np.float32)
        for start in range(0, 44100, 1024):
            chunk = samples[start:start + 1024]
            if len(chunk) < 1024:
                break
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


LONG_NAME = "l" * 240 + ".jpg"  # 244 bytes: legal, but the sidecar's name would pass the 255-byte limit


def _hostile_batch(tmp: Path) -> dict[str, tuple[set[str], str | None]]:
    """name -> (allowed dispositions, a phrase the error must contain); files written to ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    expect: dict[str, tuple[set[str], str | None]] = {}
    ok = {"done", "review"}

    def put(name: str, data: bytes, dispositions: set[str], error: str | None = None) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expect[name] = (dispositions, error)

    jpeg, png = _jpeg_bytes(1), _png_bytes(2)
    clip = _video_bytes(tmp / "clip.part", seed=3)
    # Broken files.
    put("zero.jpg", b"", {"failed"}, "empty file")
    put("zero.mp4", b"", {"failed"}, "empty file")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], {"failed"}, "truncated")
    put("truncated.png", png[: len(png) // 2], {"failed"}, None)
    put("truncated.mp4", clip[: len(clip) // 2], {"failed"}, None)
    put("png-named.mp4", png, ok)  # content decides, not the name: processed as the PNG it is
    put("text-named.jpg", b"hello, this is not an image\n" * 20, {"failed"}, "unrecognised content")
    # Dimensions and pixel formats.
    put("one-by-one.png", _save(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), ok)
    put("very-wide.png", _save(Image.fromarray(_noise(4, 100_000, 1)), "PNG"), ok)
    put("bomb.png", _png_bomb(100_000, 100_000), {"failed"}, "pixel limit")
    put("sixteen-bit.png", _save(Image.fromarray((_noise(5, channels=1).astype(np.uint16) * 257)), "PNG"), ok)
    put("cmyk.jpg", _save(Image.fromarray(_noise(6)).convert("CMYK"), "JPEG"), ok)
    put("alpha.png", _save(Image.fromarray(_noise(7, channels=4), "RGBA"), "PNG"), ok)
    put("palette.png", _save(Image.fromarray(_noise(8)).convert("P"), "PNG"), ok)
    frames = [Image.fromarray(_noise(9 + i)).convert("P") for i in range(3)]
    put("animated.gif", _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100), {"failed"},
        "animated and multi-page images are refused")
    pages = [Image.fromarray(_noise(12 + i)) for i in range(2)]
    put("multipage.tif", _save(pages[0], "TIFF", save_all=True, append_images=pages[1:]), {"failed"},
        "animated and multi-page images are refused")
    # Videos.
    _write_audio_only(tmp / "audio-only.mp4", "mp4", "aac")
    expect["audio-only.mp4"] = ({"failed"}, "no video stream")
    _write_audio_only(tmp / "no-video-stream.mkv", "matroska", "flac")
    expect["no-video-stream.mkv"] = ({"failed"}, "no video stream")
    _write_vfr(tmp / "variable-rate.mp4")
    expect["variable-rate.mp4"] = (ok, None)
    _write_rotated(tmp / "rotated.mp4")
    expect["rotated.mp4"] = (ok, None)
    damaged = bytearray(_video_bytes(tmp / "damaged.part", seconds=2.0, seed=4))
    middle = len(damaged) // 2
    damaged[middle: middle + 2000] = np.random.default_rng(0).integers(0, 255, 2000, dtype=np.uint8).tobytes()
    # Damage the decoder conceals is flagged for review; never passed as a clean "done".
    put("damaged-middle.mp4", bytes(damaged), {"review", "failed"})
    # Names.
    put("visage-été-日本語.jpg", _jpeg_bytes(20), ok)
    put("new\nline.jpg", _jpeg_bytes(21), ok)
    put(LONG_NAME, _jpeg_bytes(22), ok)
    put("collides.jpg", _jpeg_bytes(23), ok)
    # A directory dropped whole keeps its structure.
    for rel in ("album/2024/a.jpg", "album/2024/b.jpg", "album/c.png"):
        put(rel, _jpeg_bytes(len(rel)) if rel.endswith(".jpg") else png, ok)
    return expect


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hostile_batch_each_file_accounted_for_and_non_files_left_alone(tmp_path, daemons):
    daemon = daemons(tmp_path, workers=2)
    ingest, out = daemon.ingest, tmp_path / "out"
    staging = tmp_path / "staging"
    expect = _hostile_batch(staging)

    # An existing, foreign output under a name the batch will use: never overwritten.
    out.mkdir(parents=True)
    (out / "collides.jpg").write_bytes(b"someone else's file")
    # Outside the share: targets that must never be read, moved or changed.
    outside = tmp_path / "outside"
    outside.mkdir()
    write_image(outside / "secret.jpg", 99)
    write_image(outside / "hardlinked.jpg", 98)
    outside_sha = {p.name: _sha(p) for p in outside.iterdir()}
    passwd_sha = _sha(Path("/etc/passwd"))

    daemon.start().wait_ready()
    # Not regular files: never opened (a FIFO or /dev/zero would block or never end), never moved.
    ingest.mkdir(parents=True, exist_ok=True)
    specials: dict[str, str] = {}
    os.symlink("/etc/passwd", ingest / "passwd-link.jpg")
    specials["passwd-link.jpg"] = "symlink"
    os.symlink(outside / "secret.jpg", ingest / "outside-link.jpg")
    specials["outside-link.jpg"] = "symlink"
    os.symlink(outside, ingest / "outside-dir")  # a link to a directory outside: not walked into
    specials["outside-dir"] = "symlink"
    os.mkfifo(ingest / "pipe.jpg")
    specials["pipe.jpg"] = "fifo"
    os.mknod(ingest / "socket.jpg", stat.S_IFSOCK | 0o600)
    specials["socket.jpg"] = "socket"
    try:
        os.mknod(ingest / "zero-device.mp4", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
        specials["zero-device.mp4"] = "device"
    except PermissionError:
        pass  # no CAP_MKNOD here: the other special files still run
    # A hard link to a file outside: a regular file, processed; the outside name keeps its content.
    os.link(outside / "hardlinked.jpg", ingest / "hardlink.jpg")
    expect["hardlink.jpg"] = ({"done", "review"}, None)
    # A hidden file: ignored by rule (dot-names are partial or system files), left in place.
    (ingest / ".hidden.jpg").write_bytes(_jpeg_bytes(30))

    # Drop the batch: loose files by rename (complete on arrival), the album directory in one move.
    for path in sorted(staging.iterdir()):
        os.rename(path, ingest / path.name)

    regular = sorted(expect)
    wait_for(lambda: daemon.finished() >= len(regular), 300, "the hostile batch")
    status = daemon.service.status()
    assert daemon.proc.poll() is None, "the daemon died"
    assert daemon.stop() == 0

    found: dict[str, tuple[str, QCReport]] = {}
    for folder in ("out", "review", "failed"):
        for sidecar in sidecars(tmp_path / folder):
            report = QCReport.from_json((tmp_path / folder / sidecar).read_bytes())
            assert (tmp_path / folder / sidecar[: -len(SIDECAR_SUFFIX)]).is_file(), sidecar
            assert report.input.name not in found, f"{report.input.name!r} published twice"
            found[report.input.name] = (folder, report)
    assert sorted(found) == regular
    for name, (allowed, phrase) in expect.items():
        folder, report = found[name]
        assert report.disposition in allowed, (name, report.disposition, report.error, report.review_reasons)
        if report.disposition == "failed":
            assert folder == "failed" and report.error is not None and report.error.message, name
            if phrase:
                assert phrase in report.error.message, (name, report.error.message)
    assert found["damaged-middle.mp4"][1].disposition == "failed" or found["damaged-middle.mp4"][1].review_reasons

    # Structure kept for the dropped directory; the foreign output untouched, the newcomer beside it.
    for rel in ("album/2024/a.jpg", "album/2024/b.jpg", "album/c.png"):
        assert (tmp_path / found[rel][0] / rel).is_file(), rel
    assert (out / "collides.jpg").read_bytes() == b"someone else's file"
    collides_folder, collides = found["collides.jpg"]
    assert collides.output is not None and collides.output.name.startswith("collides.") and \
        collides.output.name != "collides.jpg"
    # A name too long for its sidecar's name is shortened and tagged with its hash, not stuck.
    long_report = found[LONG_NAME][1]
    assert long_report.output is not None and len(long_report.output.name.encode()) <= 200
    assert long_report.input.sha256[:8] in long_report.output.name
    # Nothing outside the share was read into the results, moved or changed.
    assert _sha(Path("/etc/passwd")) == passwd_sha
    assert {p.name: _sha(p) for p in outside.iterdir()} == outside_sha
    for folder in ("out", "review", "failed", "originals"):
        for name in files(tmp_path / folder):
            assert not name.startswith("outside-dir"), f"followed a directory link into {folder}/{name}"

    # Special files stay in ingest, untouched and of the same type; the service reported them.
    kinds = {"symlink": stat.S_ISLNK, "fifo": stat.S_ISFIFO, "socket": stat.S_ISSOCK, "device": stat.S_ISCHR}
    for name, kind in specials.items():
        assert kinds[kind](os.lstat(ingest / name).st_mode), name
    assert (ingest / ".hidden.jpg").is_file()
    left = {p.name for p in ingest.iterdir()  # emptied sub-folders of a dropped tree stay, by design
            if p.name != ".veil" and not (p.is_dir() and not p.is_symlink() and not files(p))}
    assert left == set(specials) | {".hidden.jpg"}, left
    warned = sum(e.get("count", 0) for e in daemon.events("not_regular_files_ignored"))
    assert warned >= len(specials), daemon.events("not_regular_files_ignored")
    assert status["counts"]["failed"] == sum(1 for _, r in found.values() if r.disposition == "failed")
    assert len(files(tmp_path / "originals")) == sum(1 for _, r in found.values() if r.disposition != "failed")


def _in_flight(daemon: Daemon, name: str) -> dict | None:
    for job in (daemon.service.status() or {}).get("in_flight", []):
        if job.get("name") == name and job["running_s"] >= 0.3:
            return job
    return None


def test_a_file_modified_or_replaced_after_its_claim_is_never_published_from_a_mix(tmp_path, daemons):
    # The default profile (faces and plates): a 2 s clip is in flight for seconds, long enough to change it.
    daemon = daemons(tmp_path, profile="").start().wait_ready()
    first = _video_bytes(tmp_path / "v1.part", seconds=2.0, seed=1)
    second = _video_bytes(tmp_path / "v2.part", seconds=1.0, seed=2)
    third = _video_bytes(tmp_path / "v3.part", seconds=1.0, seed=3)
    assert len({first, second, third}) == 3
    target = daemon.ingest / "clip.mp4"
    with open(target, "wb") as writer:  # a writer that stalls longer than settle_s, then carries on
        writer.write(first)
        writer.flush()
        wait_for(lambda: _in_flight(daemon, "clip.mp4"), 120, "the first version to be in flight")
        assert not target.exists()  # claimed: renamed away, the writer still holds the same inode
        writer.seek(0)
        writer.truncate()
        writer.write(second)
    # Replaced: a new file under the claimed name (a rename over it, as copy tools do) is a new input.
    replacement = tmp_path / "clip.mp4.part"
    replacement.write_bytes(third)
    os.rename(replacement, target)
    wait_for(lambda: daemon.finished() == 2, 300, "both versions")
    assert daemon.stop() == 0

    published = {}
    for folder in ("out", "review"):
        for sidecar in sidecars(tmp_path / folder):
            report = QCReport.from_json((tmp_path / folder / sidecar).read_bytes())
            published[report.input.sha256] = report
    digest = {hashlib.sha256(data).hexdigest(): label
              for data, label in ((first, "first"), (second, "second"), (third, "third"))}
    # The claimed file's first version was never published (its result was made from bytes that changed);
    # its final version and the replacement each once, each sidecar naming the exact bytes it was made from.
    assert sorted(digest[sha] for sha in published) == ["second", "third"]
    for report in published.values():
        assert report.disposition in ("done", "review") and report.video is not None
    originals = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "originals").iterdir()}
    assert originals == set(published)
    [changed] = daemon.events("job_attempt_failed")
    assert "changed" in changed["reason"]


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
        status = wait_for(lambda: next((st for st in [daemon.service.status()] if st and any(
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


def _leaves(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        yield path, value
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def test_logs_hold_no_detections_and_sidecars_no_pixels(tmp_path, daemons):
    daemon = daemons(tmp_path, profile=REVIEW_PROFILE)  # a wide review band: noise gives many detections
    daemon.start(env={"VEIL_SERVICE__LOG_LEVEL": "debug"}).wait_ready()  # the chattiest logs, file names on
    write_image(daemon.ingest / "noise.jpg", 1, size=(160, 120))
    write_video(daemon.ingest / "clip.mp4", seconds=1.0)
    wait_for(lambda: daemon.finished() == 2, 120, "both files")
    assert daemon.stop() == 0
    reports = assert_each_once(daemon, ["noise.jpg", "clip.mp4"])
    detections = [d for r in reports.values() for d in r.detections]
    assert len(detections) >= 3, "the test needs detections to look for"

    log_text = daemon.log_path.read_text()
    events = daemon.events()
    assert len(events) >= 6
    for event in events:
        for path, value in _leaves(event):
            assert not any(word in path.lower() for word in ("box", "score", "detection", "pixel")), (path, event)
            if isinstance(value, list):
                assert not any(isinstance(v, float) for v in value), (path, event)
            if isinstance(value, str):
                assert len(value) < 2000, (path, len(value))
    for det in detections:
        x1, y1, x2, y2 = det.box
        assert f"{x1}, {y1}, {x2}" not in log_text and f"{x1},{y1},{x2}" not in log_text

    for folder in ("out", "review"):
        for sidecar in sidecars(tmp_path / folder):
            raw = (tmp_path / folder / sidecar).read_bytes()
            assert len(raw) < 200_000, (sidecar, len(raw))  # a 160x120 frame alone is 57,600 bytes of RGB
            for path, value in _leaves(json.loads(raw)):
                if isinstance(value, str):
                    assert len(value) < 1000, (sidecar, path)  # no encoded image or array
                if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
                    assert len(value) <= 4, (sidecar, path, len(value))  # boxes, never pixel rows


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
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=120)
    if "Overall exposure level" not in result.stdout:
        pytest.skip(f"this systemd-analyze cannot score a unit file offline: {result.stderr.strip()[:200]}")
    line = next(l for l in result.stdout.splitlines() if "Overall exposure level" in l)
    score = float(line.split(":")[1].split()[0])
    assert score <= 2.5, line  # "OK" is below 4.0; the shipped unit scores 2.3 with systemd 252


def test_onnxruntime_telemetry_is_off_no_device_id_no_event_store(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    write_image(tmp_path / "in" / "a.jpg", 1)
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "process", str(tmp_path / "in"), "-o",
                             str(tmp_path / "out"), "--classes", "face"],
                            cwd=REPO, env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "a.jpg").is_file()
    # With telemetry on, onnxruntime writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}.
    assert [p.relative_to(home).as_posix() for p in home.rglob("*")] == []
    assert "telemetry" not in result.stderr.lower()
