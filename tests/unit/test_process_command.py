"""``veil process`` plumbing with a fake pipeline: every file ends as done or failed with its own reason,
whatever the state of the output folder; two inputs never share an output; the help and the summary."""

from __future__ import annotations

import errno
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.params import Params
from pipeline.qc import ErrorRecord, FileInfo, QCReport

from daemon import cli
from daemon.cli import process as cmd_process


def fake_process_file(src: Path, dst: Path, params, engine, *, name: str, edits=None) -> QCReport:
    """Stands in for the pipeline: copies the input; "review" in its content flags it, "bad" fails it."""
    data = src.read_bytes()
    report = QCReport(veil_version="t", created_at=datetime.now(timezone.utc), input=FileInfo(name=name),
                      output=FileInfo(name=name))
    if b"bad" in data:
        report.disposition = "failed"
        report.error = ErrorRecord(kind="input", message="unrecognised content")
        return report
    dst.write_bytes(data)
    if b"review" in data:
        report.disposition = "review"
        report.review_reasons = ["face score 0.41 in the review band"]
    return report


@pytest.fixture
def fake_pipeline(monkeypatch):
    calls: list[str] = []

    def process(src, dst, params, engine, *, name, edits=None):
        calls.append(name)
        return fake_process_file(src, dst, params, engine, name=name)

    monkeypatch.setattr(cmd_process, "load_from_arguments", lambda args: (Params(), None))
    monkeypatch.setattr(cmd_process, "process_file", process)
    return calls


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_an_unwritable_output_fails_that_file_and_the_batch_goes_on(tmp_path, fake_pipeline, capsys):
    inputs = tree(tmp_path / "in", {"a.jpg": b"a", "b/c.jpg": b"c", "d.jpg": b"d"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "b").write_bytes(b"a regular file where a folder should be")  # as good as mode 555, even for root
    code = cli.main(["process", str(inputs), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "2 of 3 file(s) processed, 0 flagged for review, 1 failed" in captured.out
    [failed] = [line for line in captured.err.splitlines() if line.startswith("FAILED")]
    assert failed.startswith(f"FAILED {inputs / 'b' / 'c.jpg'}: cannot write")
    assert (out / "a.jpg").read_bytes() == b"a" and (out / "d.jpg").read_bytes() == b"d"
    assert (out / "d.jpg.veil.json").is_file()
    assert fake_pipeline == ["a.jpg", "d.jpg"]  # b/c.jpg failed at its folder, before the pipeline


def test_a_full_disk_at_the_sidecar_fails_that_file_only(tmp_path, fake_pipeline, monkeypatch, capsys):
    inputs = tree(tmp_path / "in", {"a.jpg": b"a", "b.jpg": b"b"})
    original_write_text = Path.write_text

    def full_disk(self, text, *args, **kwargs):
        if self.name == "a.jpg.veil.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return original_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    code = cli.main(["process", str(inputs), "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 of 2 file(s) processed" in captured.out
    [failed] = [line for line in captured.err.splitlines() if line.startswith("FAILED")]
    assert "a.jpg" in failed and "No space left on device" in failed
    assert (tmp_path / "out" / "b.jpg.veil.json").is_file()
    assert not list((tmp_path / "out").glob(".*veil-partial*"))


def test_two_inputs_for_one_output_are_refused_before_anything_runs(tmp_path, fake_pipeline, capsys):
    tree(tmp_path, {"a/x.jpg": b"1", "b/x.jpg": b"2"})
    code = cli.main(["process", str(tmp_path / "a" / "x.jpg"), str(tmp_path / "b" / "x.jpg"),
                     "-o", str(tmp_path / "out"), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "a" / "x.jpg") in err and str(tmp_path / "b" / "x.jpg") in err
    assert fake_pipeline == [] and not (tmp_path / "out").exists()


def test_folders_whose_trees_overlap_in_the_output_are_refused(tmp_path, fake_pipeline, capsys):
    tree(tmp_path, {"one/x.jpg": b"1", "two/x.jpg": b"2", "two/y.jpg": b"3"})
    code = cli.main(["process", str(tmp_path / "one"), str(tmp_path / "two"), "-o", str(tmp_path / "out")])
    assert code == 2 and "x.jpg" in capsys.readouterr().err and fake_pipeline == []


def test_the_summary_names_the_files_flagged_for_review(tmp_path, fake_pipeline, capsys):
    inputs = tree(tmp_path / "in", {"a.jpg": b"review me", "b.jpg": b"b", "c.jpg": b"bad"})
    code = cli.main(["process", str(inputs), "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "2 of 3 file(s) processed, 1 flagged for review, 1 failed" in captured.out
    assert f"REVIEW {inputs / 'a.jpg'}: face score 0.41 in the review band" in captured.out.splitlines()
    assert f"FAILED {inputs / 'c.jpg'}: unrecognised content" in captured.err.splitlines()


def test_help_is_plain_text_with_every_option_explained_and_its_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["process", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text
    flat = " ".join(text.split())
    assert "-o OUTDIR, --output OUTDIR where the results" in flat
    assert "--jpeg-quality JPEG_QUALITY quality of JPEG outputs, 1-100 (default: 95)" in flat
    assert "--model-dir MODEL_DIR folder with the detector models" in flat
    assert "(default: blur)" in flat and "(default: face,license_plate)" in flat


SITE_CONFIG = """
[[folders]]
name = "share"
ingest = "{root}/in"
output = "{root}/out"
profile = "site"

[profiles.default.mask]
style = "mosaic"

[profiles.site.mask]
style = "solid"
margin = 0.3

[profiles.site.video]
audio = "drop"
"""


def arguments(*flags: str) -> tuple[Params, object]:
    args = cli.build_parser().parse_args(["process", "in", "-o", "out", *flags])
    return cmd_process.params_from_arguments(args)


@pytest.fixture
def site_config(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("VEIL_CONFIG", raising=False)
    path = tmp_path / "veil.toml"
    path.write_text(SITE_CONFIG.format(root=tmp_path))
    return path


def test_no_flag_runs_the_shipped_settings_and_a_flag_changes_only_its_key():
    assert arguments()[0] == Params()
    params, _ = arguments("--style", "solid", "--drop-audio")
    assert params == Params.model_validate({"mask": {"style": "solid"}, "video": {"audio": "drop"}})


def test_a_profile_of_the_service_configuration_runs_as_serve_runs_it_with_flags_laid_over(site_config):
    site = Params.model_validate({"mask": {"style": "solid", "margin": 0.3}, "video": {"audio": "drop"}})
    assert arguments("--config", str(site_config), "--profile", "site")[0] == site
    params, _ = arguments("--config", str(site_config), "--profile", "site", "--margin", "0.25", "--classes", "face")
    assert params.mask == site.mask.model_copy(update={"margin": 0.25}) and params.video == site.video
    assert params.detector.classes == ("face",)
    assert arguments("--config", str(site_config))[0].mask.style == "mosaic"  # its default profile


def test_a_profile_that_cannot_be_found_is_refused_by_name(site_config, monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"--profile night: not in the configuration \(profiles: default, site\)"):
        arguments("--config", str(site_config), "--profile", "night")
    monkeypatch.setattr("daemon.cli.context.SYSTEM_CONFIG", tmp_path / "absent.toml")
    with pytest.raises(ValueError, match="--profile site: no configuration"):
        arguments("--profile", "site")
    monkeypatch.setenv("VEIL_CONFIG", str(site_config))
    assert arguments("--profile", "site")[0].mask.style == "solid"
