"""Which names are inputs, and when a file counts as complete (a fake clock, real files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.config.settings import DEFAULT_IGNORE
from daemon.intake.stability import StabilityTracker, is_ignored


@pytest.mark.parametrize(
    "rel, ignored",
    [
        ("photo.jpg", False),
        ("sub/dir/clip.mp4", False),
        ("photo.jpg.part", True),
        ("upload.tmp", True),
        ("~$report.docx", True),
        (".DS_Store", True),
        ("Thumbs.db", True),
        ("._photo.jpg", True),
        ("@eaDir/photo.jpg/SYNOFILE_THUMB_M.jpg", True),
        (".veil/processing/a/b/input/x.jpg", True),
        (".photo.jpg.Ab12Cd", True),  # rsync's temporary name
        ("film.mp4.crdownload", True),
        ("a.part/real.jpg", True),
    ],
)
def test_ignored_names(rel, ignored):
    assert is_ignored(Path(rel), DEFAULT_IGNORE) is ignored


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_file_is_ready_only_after_settling(tmp_path):
    clock = Clock()
    tracker = StabilityTracker(5.0, clock=clock)
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 10)
    tracker.observe(path)
    assert tracker.poll() == []  # first sight
    clock.now += 3
    with path.open("ab") as handle:  # still growing
        handle.write(b"y" * 10)
    assert tracker.poll() == []
    clock.now += 4.9
    assert tracker.poll() == []  # 4.9 s since the last change
    clock.now += 0.2
    ready = tracker.poll()
    assert [r.path for r in ready] == [path] and ready[0].size == 20
    assert len(tracker) == 0


def test_mtime_change_without_size_change_restarts_the_clock(tmp_path):
    clock = Clock()
    tracker = StabilityTracker(2.0, clock=clock)
    path = tmp_path / "a.jpg"
    path.write_bytes(b"abc")
    tracker.observe(path)
    tracker.poll()
    clock.now += 1.5
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert tracker.poll() == []
    clock.now += 1.0
    assert tracker.poll() == []
    clock.now += 1.1
    assert len(tracker.poll()) == 1


def test_vanished_and_non_regular_candidates_are_dropped(tmp_path):
    tracker = StabilityTracker(0.0)
    (tmp_path / "dir").mkdir()
    tracker.observe(tmp_path / "gone.jpg")
    tracker.observe(tmp_path / "dir")
    assert tracker.poll() == [] and len(tracker) == 0


def test_zero_settle_is_ready_at_first_poll(tmp_path):
    tracker = StabilityTracker(0.0)
    (tmp_path / "a.jpg").write_bytes(b"1")
    tracker.observe(tmp_path / "a.jpg")
    assert len(tracker.poll()) == 1


def test_done_marker_gates_the_file(tmp_path):
    clock = Clock()
    tracker = StabilityTracker(5.0, done_marker=".done", clock=clock)
    path = tmp_path / "a.jpg"
    path.write_bytes(b"data")
    tracker.observe(path)
    clock.now += 100
    assert tracker.poll() == []  # stable for ages, but no marker
    (tmp_path / "a.jpg.done").write_bytes(b"")
    tracker.observe(tmp_path / "a.jpg.done")  # the marker's event makes its subject a candidate
    assert [r.path for r in tracker.poll()] == [path]


def test_symlinks_are_never_followed_and_not_offered_again(tmp_path):
    target = tmp_path / "secret.jpg"
    target.write_bytes(b"private")
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    tracker = StabilityTracker(0.0)
    tracker.observe(link)
    assert tracker.poll() == [] and tracker.rejected == {link}
    tracker.observe(link)  # the next rescan
    assert len(tracker) == 0
    link.unlink()
    link.write_bytes(b"a real file now")  # replaced by a regular file of the same name: offered
    tracker.observe(link)
    assert [r.path for r in tracker.poll()] == [link] and tracker.rejected == set()
