"""Finding arrivals: rescans, real inotify events, ignored names, and the order files become ready."""

from __future__ import annotations

import time
from pathlib import Path

from daemon.config.settings import FolderSettings, WatchSettings
from daemon.intake.watcher import FolderWatcher, InotifyHub


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock, **watch) -> FolderWatcher:
    (tmp_path / "in").mkdir(exist_ok=True)
    folder = FolderSettings(ingest=tmp_path / "in", output=tmp_path / "out")
    return FolderWatcher(folder, WatchSettings(**{"settle_s": 1.0, "rescan_interval_s": 1000, **watch}), clock=clock)


def drain(watcher: FolderWatcher) -> list[str]:
    taken = []
    while (stable := watcher.take()) is not None:
        taken.append(stable.path.relative_to(watcher.root).as_posix())
    return taken


def test_rescan_finds_nested_files_and_skips_ignored_ones(tmp_path):
    clock = Clock()
    watcher = make(tmp_path, clock)
    root = tmp_path / "in"
    for rel in ("a.jpg", "sub/b.mp4", "sub/deeper/c.png", "x.part", ".hidden.jpg", "@eaDir/a.jpg/thumb.jpg",
                ".veil/processing/i/j/input/d.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"1")
    watcher.tick()
    assert drain(watcher) == [] and watcher.waiting_count == 3
    clock.now += 1.1
    watcher.tick()
    assert sorted(drain(watcher)) == ["a.jpg", "sub/b.mp4", "sub/deeper/c.png"]


def test_a_taken_file_is_not_offered_again_but_put_back_is(tmp_path):
    clock = Clock()
    watcher = make(tmp_path, clock, settle_s=0.0)
    (tmp_path / "in" / "a.jpg").write_bytes(b"1")
    watcher.tick()
    [stable] = [watcher.take()]
    assert stable is not None and watcher.take() is None
    watcher.put_back(stable.path)
    clock.now += 1
    watcher.tick()
    assert drain(watcher) == ["a.jpg"]


def test_inotify_events_are_noticed_between_rescans(tmp_path):
    clock = Clock()
    watcher = make(tmp_path, clock, settle_s=0.0)
    watcher.tick()  # the start-up scan; the next is 1000 s away on this clock
    hub = InotifyHub([watcher])
    hub.start()
    try:
        (tmp_path / "in" / "sub").mkdir()
        (tmp_path / "in" / "sub" / "new.jpg").write_bytes(b"data")
        taken: list[str] = []
        deadline = time.monotonic() + 10
        while not taken:
            assert time.monotonic() < deadline, "no inotify event arrived"
            clock.now += 1
            watcher.tick()
            taken = drain(watcher)
            time.sleep(0.02)  # polling interval for the observer thread, not synchronisation
        assert taken == ["sub/new.jpg"]
    finally:
        hub.stop()
