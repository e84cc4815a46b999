"""Claiming, the job journal and recovery, on real files."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from daemon.config.settings import FolderSettings
from daemon.intake import jobs
from daemon.intake.jobs import ClaimArea, InstanceBusy
from daemon.intake.stability import StableFile


def folder(tmp_path: Path) -> FolderSettings:
    (tmp_path / "in").mkdir(exist_ok=True)
    return FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")


def arrive(f: FolderSettings, rel: str, data: bytes = b"data") -> StableFile:
    path = f.ingest / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    st = path.stat()
    return StableFile(path, st.st_size, st.st_mtime_ns)


def test_claim_moves_the_input_and_journals_it(tmp_path):
    f = folder(tmp_path)
    area = ClaimArea(f, "a")
    stable = arrive(f, "sub/x.jpg", b"123")
    job = area.claim(stable)
    assert job is not None
    assert not stable.path.exists()
    assert job.input_path.read_bytes() == b"123"
    assert job.record.rel == "sub/x.jpg" and job.record.state == "claimed"
    assert (job.dir / "job.json").exists()


def test_claim_of_a_vanished_file_leaves_nothing(tmp_path):
    f = folder(tmp_path)
    area = ClaimArea(f, "a")
    stable = arrive(f, "x.jpg")
    stable.path.unlink()
    assert area.claim(stable) is None
    assert list(area.root.iterdir()) == []


def test_claim_of_a_changed_file_gives_it_back(tmp_path):
    f = folder(tmp_path)
    area = ClaimArea(f, "a")
    stable = arrive(f, "x.jpg", b"12")
    with stable.path.open("ab") as handle:
        handle.write(b"345")  # the writer was not finished after all
    assert area.claim(stable) is None
    assert stable.path.read_bytes() == b"12345"
    assert list(area.root.iterdir()) == []


def test_two_instances_racing_claim_each_file_once(tmp_path):
    f = folder(tmp_path)
    files = [arrive(f, f"{i:03d}.jpg", str(i).encode()) for i in range(200)]
    areas = [ClaimArea(f, "a"), ClaimArea(f, "b")]
    claimed: dict[str, list[str]] = {"a": [], "b": []}

    def take(area: ClaimArea) -> None:
        for stable in files:
            job = area.claim(stable)
            if job is not None:
                claimed[area.instance].append(job.record.rel)

    threads = [threading.Thread(target=take, args=(area,)) for area in areas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = claimed["a"] + claimed["b"]
    assert sorted(everything) == sorted(s.path.name for s in files)  # each once, none lost
    assert len(set(everything)) == len(everything)


def test_second_process_with_the_same_instance_name_is_refused(tmp_path):
    f = folder(tmp_path)
    first, second = ClaimArea(f, "a"), ClaimArea(f, "a")
    first.lock()
    with pytest.raises(InstanceBusy, match="instance name 'a'"):
        second.lock()
    ClaimArea(f, "b").lock()  # another name is fine
    first.unlock()
    second.lock()


def test_recovery_resumes_each_job_at_its_step(tmp_path):
    f = folder(tmp_path)
    area = ClaimArea(f, "a")
    claimed = area.claim(arrive(f, "1.jpg"))
    processed = area.claim(arrive(f, "2.jpg"))
    processed.record.state = "processed"
    processed.save()
    orphan = area.claim(arrive(f, "3.jpg"))
    orphan.input_path.unlink()  # as if killed between journal and rename: nothing was taken
    jobs = {job.record.rel: job for job in ClaimArea(f, "a").recover()}
    assert set(jobs) == {"1.jpg", "2.jpg"}
    assert jobs["1.jpg"].record.state == "claimed" and jobs["1.jpg"].id == claimed.id
    assert jobs["2.jpg"].record.state == "processed"
    assert not orphan.dir.exists()


def test_release_puts_the_input_back_without_overwriting(tmp_path):
    f = folder(tmp_path)
    area = ClaimArea(f, "a")
    job = area.claim(arrive(f, "x.jpg", b"old"))
    assert area.release(job)
    assert (f.ingest / "x.jpg").read_bytes() == b"old" and not job.dir.exists()
    job = area.claim(arrive(f, "y.jpg", b"mine"))
    (f.ingest / "y.jpg").write_bytes(b"newcomer")
    assert not area.release(job)  # the name was taken meanwhile: keep ours for the next start
    assert (f.ingest / "y.jpg").read_bytes() == b"newcomer" and job.input_path.read_bytes() == b"mine"


def test_a_folder_that_is_a_symbolic_link_is_never_claimed_through(tmp_path):
    f = folder(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.jpg").write_bytes(b"secret")
    (f.ingest / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    st = (tmp_path / "outside" / "x.jpg").stat()
    area = ClaimArea(f, "a")
    with pytest.raises(OSError, match="symbolic link"):
        area.claim(StableFile(f.ingest / "linked" / "x.jpg", st.st_size, st.st_mtime_ns))
    assert list(tmp_path.rglob("x.jpg")) == [tmp_path / "outside" / "x.jpg"]  # nothing moved, nothing copied


def test_a_folder_swapped_for_a_link_after_the_check_takes_nothing_from_outside(tmp_path, monkeypatch):
    """The swap between the check and the rename: the rename goes through the folder that was checked."""
    f = folder(tmp_path)
    stable = arrive(f, "sub/x.jpg", b"dropped")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.jpg").write_bytes(b"dropped")  # the same size: it would pass the claim's check
    os.utime(tmp_path / "outside" / "x.jpg", ns=(stable.mtime_ns, stable.mtime_ns))
    checked = jobs.folder_within

    @contextmanager
    def swapped_after_the_check(ingest: Path, rel: Path) -> Iterator[int]:
        with checked(ingest, rel) as handle:
            (ingest / "sub").rename(ingest / "moved")
            (ingest / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
            yield handle

    monkeypatch.setattr(jobs, "folder_within", swapped_after_the_check)
    job = ClaimArea(f, "a").claim(stable)
    assert job is not None
    assert (tmp_path / "outside" / "x.jpg").exists()  # left where it was
    assert not (f.ingest / "moved" / "x.jpg").exists()  # the file dropped in the share is the one taken


def test_a_done_marker_is_removed_in_the_share_and_never_through_a_link(tmp_path):
    f = folder(tmp_path)
    area = ClaimArea(f, "a")
    stable = arrive(f, "sub/x.jpg")
    (f.ingest / "sub" / "x.jpg.done").touch()
    area.remove_marker(stable, ".done")
    assert not (f.ingest / "sub" / "x.jpg.done").exists()
    area.remove_marker(stable, ".done")  # already gone: nothing to do
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.jpg.done").touch()
    (f.ingest / "sub" / "x.jpg").unlink()
    (f.ingest / "sub").rmdir()
    (f.ingest / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
    area.remove_marker(stable, ".done")
    assert (tmp_path / "outside" / "x.jpg.done").exists()
