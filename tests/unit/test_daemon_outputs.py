"""Publishing: no overwrite, sidecar last, idempotent redelivery, deterministic collision names."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.qc import ErrorRecord, FileInfo, QCReport

from daemon.config.settings import FolderSettings
from daemon.fsutil import publish_bytes, publish_file
from daemon.intake.jobs import ClaimArea
from daemon.intake.stability import StableFile
from daemon.publish.outputs import candidate_names, finalize, publish, sha256_file


def setup(tmp_path: Path, on_success: str = "archive"):
    (tmp_path / "in").mkdir(exist_ok=True)
    f = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out", on_success=on_success)
    for p in f.destinations():
        p.mkdir(parents=True, exist_ok=True)
    return f, ClaimArea(f, "a")


def claimed_job(f, area, rel: str, data: bytes, result: bytes | None = b"masked", disposition="done"):
    path = f.ingest / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    st = path.stat()
    job = area.claim(StableFile(path, st.st_size, st.st_mtime_ns))
    job.staging.mkdir()
    companions = []
    if result is not None:
        job.staged_output.write_bytes(result)
        if disposition == "review":
            extra = job.staged_output.with_name(job.staged_output.name + ".contact.jpg")
            extra.write_bytes(b"sheet")
            companions.append(extra.name)
    report = QCReport(
        veil_version="t", created_at=datetime.now(timezone.utc),
        input=FileInfo(name=rel, sha256=sha256_file(job.input_path)),
        output=FileInfo(name=rel) if result is not None else None,
        companions=companions, disposition=disposition,
        error=ErrorRecord(kind="input", message="bad") if disposition == "failed" else None,
    )
    job.record.state = "processed"
    job.save()
    return job, report


def test_publish_never_overwrites(tmp_path):
    src = tmp_path / "s"
    src.write_bytes(b"new")
    final = tmp_path / "d" / "x.jpg"
    final.parent.mkdir()
    final.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        publish_file(src, final)
    with pytest.raises(FileExistsError):
        publish_bytes(b"new", final)
    assert final.read_bytes() == b"old"
    assert [p.name for p in final.parent.iterdir()] == ["x.jpg"]  # no temporary left behind


def test_clean_result_goes_to_output_and_original_to_originals(tmp_path):
    f, area = setup(tmp_path)
    job, report = claimed_job(f, area, "a/x.jpg", b"orig")
    published = publish(job, f, report)
    finalize(job, area, f, report.disposition)
    assert published.name == "a/x.jpg" and not published.duplicate
    assert (f.output / "a/x.jpg").read_bytes() == b"masked"
    sidecar = QCReport.from_json((f.output / "a/x.jpg.veil.json").read_bytes())
    assert sidecar.input.sha256 == sha256_file(f.originals / "a/x.jpg")
    assert (f.originals / "a/x.jpg").read_bytes() == b"orig"
    assert not job.dir.exists()


def test_review_result_brings_its_companions(tmp_path):
    f, area = setup(tmp_path, on_success="delete")
    job, report = claimed_job(f, area, "x.jpg", b"orig", disposition="review")
    publish(job, f, report)
    finalize(job, area, f, report.disposition)
    assert sorted(p.name for p in f.review.iterdir()) == ["x.jpg", "x.jpg.contact.jpg", "x.jpg.veil.json"]
    assert list(f.output.iterdir()) == [] and list(f.originals.iterdir()) == []


def test_failed_input_goes_to_failed_unchanged_with_its_error(tmp_path):
    f, area = setup(tmp_path)
    job, report = claimed_job(f, area, "x.jpg", b"garbage", result=None, disposition="failed")
    publish(job, f, report)
    finalize(job, area, f, report.disposition)
    assert (f.failed / "x.jpg").read_bytes() == b"garbage"
    assert QCReport.from_json((f.failed / "x.jpg.veil.json").read_bytes()).error.kind == "input"
    assert list(f.originals.iterdir()) == [] and not job.dir.exists()


def test_redelivered_job_publishes_once(tmp_path):
    f, area = setup(tmp_path)
    first, report = claimed_job(f, area, "x.jpg", b"same")
    publish(first, f, report)
    finalize(first, area, f, "done")
    again, report2 = claimed_job(f, area, "x.jpg", b"same")
    published = publish(again, f, report2)
    finalize(again, area, f, "done")
    assert published.duplicate
    assert sorted(p.name for p in f.output.iterdir()) == ["x.jpg", "x.jpg.veil.json"]


def test_different_file_with_a_taken_name_gets_a_deterministic_suffix(tmp_path):
    f, area = setup(tmp_path)
    first, report = claimed_job(f, area, "x.jpg", b"one")
    publish(first, f, report)
    finalize(first, area, f, "done")
    second, report2 = claimed_job(f, area, "x.jpg", b"two", result=b"masked two")
    sha = report2.input.sha256
    published = publish(second, f, report2)
    finalize(second, area, f, "done")
    assert published.name == f"x.{sha[:8]}.jpg"
    assert (f.output / "x.jpg").read_bytes() == b"masked"  # untouched
    assert (f.output / published.name).read_bytes() == b"masked two"
    assert QCReport.from_json((f.output / f"{published.name}.veil.json").read_bytes()).output.name == published.name
    assert (f.originals / f"x.{sha[:8]}.jpg").read_bytes() == b"two"  # the archive never overwrites either


def test_interrupted_publish_resumes_without_duplicates(tmp_path):
    f, area = setup(tmp_path)
    job, report = claimed_job(f, area, "x.jpg", b"orig")
    # As if killed after the output was placed but before the sidecar: the journal holds the targets.
    job.record.targets = {str(job.staged_output): str(f.output / "x.jpg"), "sidecar": str(f.output / "x.jpg.veil.json")}
    job.save()
    publish_file(job.staged_output, f.output / "x.jpg")
    [recovered] = ClaimArea(f, "a").recover()
    published = publish(recovered, f, report)
    finalize(recovered, area, f, "done")
    assert published.name == "x.jpg" and not published.duplicate
    assert sorted(p.name for p in f.output.iterdir()) == ["x.jpg", "x.jpg.veil.json"]


def test_candidate_names_are_deterministic():
    sha = "ab" * 32
    assert candidate_names("d/x.tar.gz", sha)[:3] == ["d/x.tar.gz", "d/x.tar.abababab.gz", "d/x.tar.abababab-2.gz"]
    assert candidate_names("noext", sha)[1] == "noext.abababab"


def test_publish_links_on_one_filesystem_and_copies_across(tmp_path, monkeypatch):
    src = tmp_path / "staged.mp4"
    src.write_bytes(b"video")
    publish_file(src, tmp_path / "out" / "a.mp4")
    assert (tmp_path / "out" / "a.mp4").stat().st_ino == src.stat().st_ino  # a link: no copy of a large file

    import errno
    import os as real_os

    def cross_device(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(real_os, "link", cross_device)  # as if output/ were another filesystem
    with pytest.raises(FileExistsError):
        publish_file(src, tmp_path / "out" / "a.mp4")
    publish_file(src, tmp_path / "out" / "b.mp4")
    copied = tmp_path / "out" / "b.mp4"
    assert copied.read_bytes() == b"video" and copied.stat().st_ino != src.stat().st_ino
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]


def test_a_failed_job_whose_input_vanished_still_gets_its_sidecar(tmp_path):
    f, area = setup(tmp_path)
    job, report = claimed_job(f, area, "x.jpg", b"data", result=None, disposition="failed")
    job.input_path.unlink()
    published = publish(job, f, report)
    finalize(job, area, f, "failed")
    assert published.name == "x.jpg"
    assert [p.name for p in f.failed.iterdir()] == ["x.jpg.veil.json"] and not job.dir.exists()


def test_missing_results_are_detected(tmp_path):
    from daemon.publish.outputs import missing_results

    f, area = setup(tmp_path)
    job, report = claimed_job(f, area, "x.jpg", b"data", disposition="review")
    assert missing_results(job, report) == []
    job.staged_output.unlink()
    assert missing_results(job, report) == ["x.jpg"]


def test_keep_puts_the_original_back_recorded_as_done(tmp_path):
    from daemon.intake.kept import KeptLedger

    f, area = setup(tmp_path, on_success="keep")
    job, report = claimed_job(f, area, "sub/x.jpg", b"orig")
    publish(job, f, report)
    finalize(job, area, f, "done")
    home = f.ingest / "sub" / "x.jpg"
    assert home.read_bytes() == b"orig" and list(f.originals.iterdir()) == []
    st = home.stat()
    ledger = KeptLedger(f.ingest)
    assert ledger.is_kept("sub/x.jpg", st.st_size, st.st_mtime_ns)
    assert not ledger.is_kept("sub/x.jpg", st.st_size + 1, st.st_mtime_ns)  # changed: new content
    assert not ledger.is_kept("other.jpg", st.st_size, st.st_mtime_ns)


def test_keep_archives_when_a_newcomer_took_the_name(tmp_path):
    f, area = setup(tmp_path, on_success="keep")
    job, report = claimed_job(f, area, "x.jpg", b"orig")
    (f.ingest / "x.jpg").write_bytes(b"newcomer")
    publish(job, f, report)
    finalize(job, area, f, "done")
    assert (f.ingest / "x.jpg").read_bytes() == b"newcomer"
    assert (f.originals / "x.jpg").read_bytes() == b"orig"


def test_keep_archives_when_its_folder_became_a_link_out_of_the_share(tmp_path):
    f, area = setup(tmp_path, on_success="keep")
    job, report = claimed_job(f, area, "sub/x.jpg", b"orig")
    (tmp_path / "outside").mkdir()
    (f.ingest / "sub").rmdir()
    (f.ingest / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
    publish(job, f, report)
    finalize(job, area, f, "done")
    assert list((tmp_path / "outside").iterdir()) == []  # the original was not put out there
    assert (f.originals / "sub" / "x.jpg").read_bytes() == b"orig"
