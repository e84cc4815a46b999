"""Hostile and broken inputs dropped into a real `veil serve`: each has an expected, documented outcome.

One daemon takes a whole batch (broken files, odd dimensions and pixel formats, odd videos, odd names,
links, FIFOs, device nodes, a dropped directory tree), so the real models load once. Every regular input
must come out exactly once (output, review or failed, with its sidecar); everything that is not a regular
file must stay where it is, unread, and be reported. No sleeps: everything polls with a deadline.

The other hostile scenarios: test_hostile_claim.py (a file changed after its claim), test_hostile_confinement.py
(an unprivileged service, the systemd unit), test_hostile_privacy.py (logs, sidecars, telemetry).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from pipeline.qc import SIDECAR_SUFFIX, QCReport

from tests.integration.hostile_files import LONG_NAME, hostile_batch, jpeg_bytes
from tests.integration.serve_harness import files, sidecars, wait_for, write_image


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hostile_batch_each_file_accounted_for_and_non_files_left_alone(tmp_path, daemons):
    daemon = daemons(tmp_path, workers=2)
    ingest, out = daemon.ingest, tmp_path / "out"
    staging = tmp_path / "staging"
    expect = hostile_batch(staging)

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
    (ingest / ".hidden.jpg").write_bytes(jpeg_bytes(30))

    # Drop the batch: loose files by rename (complete on arrival), the album directory in one move.
    for path in sorted(staging.iterdir()):
        os.rename(path, ingest / path.name)

    regular = sorted(expect)
    wait_for(lambda: daemon.finished() >= len(regular), 300, "the hostile batch")
    status = daemon.status()
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


@pytest.mark.parametrize("shape", [(1, 30_000), (30_000, 1)])
def test_a_panorama_thousands_of_times_longer_than_wide_is_masked_at_the_shipped_defaults(shape, engine, tmp_path):
    """The batch above runs a faces-only profile; at ``Params()`` the plate cross-check, the focus gate and the
    drift statistics each scale the photo to one long side, where its short side must stay a pixel at least."""
    from PIL import Image

    from pipeline.params import Params
    from pipeline.run import process_file

    src = tmp_path / "panorama.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 255, (*shape, 3), dtype=np.uint8)).save(src)
    report = process_file(src, tmp_path / "out.png", Params(), engine, name=src.name)
    assert report.disposition in ("done", "review"), report.error
    assert (tmp_path / "out.png").is_file() and report.features is not None
