"""``veil process`` end to end, as a user runs it: real models, real files, the real command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.qc import QCReport

from tests.conftest import eval_set

VEIL = [sys.executable, "-m", "daemon.cli"]


def veil(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*VEIL, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def dlib_faces(tmp_path_factory) -> tuple[Path, dict]:
    folder = eval_set("dlib_faces_voc")
    return folder, json.loads((folder / "annotations.json").read_text())


def test_every_labelled_face_is_masked_and_the_sidecar_accounts_for_it(tmp_path, dlib_faces):
    folder, gt = dlib_faces
    source = tmp_path / "in" / "party"
    source.mkdir(parents=True)
    first = gt["images"][0]
    shutil.copy(folder / "images" / first["file_name"], source / "photo.jpg")
    result = veil("process", tmp_path / "in", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    output = tmp_path / "out" / "party" / "photo.jpg"  # relative path and name kept
    report = QCReport.from_json((output.parent / "photo.jpg.veil.json").read_text())
    assert report.output.sha256 and report.input.sha256 != report.output.sha256
    assert report.counts["face"] >= sum(a["image_id"] == first["id"] for a in gt["annotations"])
    assert {m.name for m in report.models} == {"centerface", "platedet"}
    assert all(m.providers == ["CPUExecutionProvider"] for m in report.models)

    before = np.asarray(Image.open(source / "photo.jpg").convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(output).convert("RGB"), dtype=np.int16)
    for annotation in (a for a in gt["annotations"] if a["image_id"] == first["id"]):
        x, y, w, h = (int(round(v)) for v in annotation["bbox"])
        changed = np.abs(after[y : y + h, x : x + w] - before[y : y + h, x : x + w]).max(axis=2) > 8
        assert changed.mean() > 0.5, f"face at {annotation['bbox']} looks unmasked"


def test_formats_are_kept_and_failures_are_listed_one_per_line(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(7)
    for name in ("a.png", "b.webp", "c.tiff", "d.bmp", "e.jpg"):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(inputs / name)
    (inputs / "notes.txt").write_text("not an image")
    (inputs / "empty.jpg").write_bytes(b"")
    result = veil("process", inputs, "-o", tmp_path / "out")
    assert result.returncode == 1
    failed_lines = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed_lines) == 2
    assert any("notes.txt" in line and "unrecognised content" in line for line in failed_lines)
    assert any("empty.jpg" in line and "empty file" in line for line in failed_lines)
    for name, fmt in (("a.png", "PNG"), ("b.webp", "WEBP"), ("c.tiff", "TIFF"), ("d.bmp", "BMP"), ("e.jpg", "JPEG")):
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == fmt
    assert not (tmp_path / "out" / "notes.txt").exists()
    failed = QCReport.from_json((tmp_path / "out" / "empty.jpg.veil.json").read_text())
    assert failed.disposition == "failed" and failed.error.kind == "input"
    assert not list((tmp_path / "out").glob(".*veil-partial*"))


def test_existing_outputs_are_never_overwritten_by_default(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGB", (32, 32)).save(inputs / "x.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.png").write_bytes(b"precious")
    result = veil("process", inputs, "-o", tmp_path / "out")
    assert result.returncode == 1 and "already exists" in result.stderr
    assert (tmp_path / "out" / "x.png").read_bytes() == b"precious"


def test_a_corrupt_model_refuses_to_start(tmp_path):
    from pipeline.detect.catalogue import default_model_dir

    models = tmp_path / "models"
    shutil.copytree(default_model_dir(), models)
    (models / "centerface.onnx").write_bytes(b"garbage")
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    result = veil("process", tmp_path / "x.png", "-o", tmp_path / "out", "--model-dir", models)
    assert result.returncode == 2
    assert "checksum mismatch for centerface.onnx" in result.stderr
    assert not (tmp_path / "out" / "x.png").exists()


def test_a_video_is_published_with_its_boxes_companion_under_the_final_name(tmp_path):
    import av

    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index * 20, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    result = veil("process", clip.parent, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    report = QCReport.from_json((tmp_path / "out" / "clip.mp4.veil.json").read_text())
    assert report.companions and all(name.startswith("clip.mp4") for name in report.companions)
    assert all((tmp_path / "out" / name).is_file() for name in report.companions)
    assert report.video["frames_written"] == 10


def test_veil_eval_writes_a_report_and_a_plot(tmp_path, dlib_faces):
    folder, gt = dlib_faces
    result = veil("eval", "--gt", folder / "annotations.json", "--images", folder / "images",
                  "--report", tmp_path / "eval.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    (face,) = report["classes"]
    assert face["object_class"] == "face" and face["ground_truth"] == len(gt["annotations"])
    assert 0 < face["ap50"] <= 1 and len(face["pr_curve"]) == 101
    assert face["mask_recall"] == pytest.approx(1 - face["mask_leaks"] / face["ground_truth"], abs=1e-4)
    assert (tmp_path / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mask recall" in result.stdout


def test_the_street_photo_of_issue_12_comes_out_with_its_plate_masked(tmp_path):
    """The photo a new user dropped in: two false face candidates on the car used to switch the plate search
    off, and the plate came out readable. ``veil process`` with no flags; the published pixels are checked
    inside the labelled plate box against the input, without the sidecar."""
    folder = eval_set("openalpr_endtoend")
    gt = json.loads((folder / "annotations.json").read_text())
    name = "us/0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg"
    image = next(i for i in gt["images"] if i["file_name"] == name)
    (plate,) = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
    shutil.copy(folder / "images" / name, tmp_path / "street.jpg")
    result = veil("process", tmp_path / "street.jpg", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr

    before = np.asarray(Image.open(tmp_path / "street.jpg").convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(tmp_path / "out" / "street.jpg").convert("RGB"), dtype=np.int16)
    x, y, w, h = (round(v) for v in plate["bbox"])
    changed = np.abs(after - before).max(axis=2) > 12
    inside = changed[y : y + h, x : x + w].mean()
    outside = changed.mean()
    assert inside > 0.5, f"only {inside:.0%} of the plate's pixels changed: the plate is readable"
    assert outside < 0.2  # the measure is not just JPEG noise everywhere


def test_audio_is_copied_by_default_and_left_out_with_drop_audio(tmp_path):
    from tests.integration.pattern_clips import ffmpeg, pattern
    from tests.integration.test_video_media import TONE, audio_packet_digest, ffprobe

    clip = tmp_path / "in" / "talk.mp4"
    clip.parent.mkdir()
    ffmpeg(*pattern("160x120"), *TONE, "-t", "0.8", "-c:v", "libx264", "-c:a", "aac", str(clip))
    for flags, out in (((), tmp_path / "kept"), (("--drop-audio",), tmp_path / "dropped")):
        result = veil("process", clip, "-o", out, *flags)
        assert result.returncode == 0, result.stderr
    kept = QCReport.from_json((tmp_path / "kept" / "talk.mp4.veil.json").read_text()).video
    assert kept["audio_streams"] == ["aac"] and kept["dropped_streams"] == []
    assert audio_packet_digest(tmp_path / "kept" / "talk.mp4") == audio_packet_digest(clip)
    dropped = QCReport.from_json((tmp_path / "dropped" / "talk.mp4.veil.json").read_text()).video
    assert dropped["audio_streams"] == [] and dropped["dropped_streams"] == ["audio:1"]
    streams = ffprobe(tmp_path / "dropped" / "talk.mp4")["streams"]
    assert [s["codec_type"] for s in streams] == ["video"]
    assert int(streams[0]["nb_read_frames"]) == dropped["frames_written"] == kept["frames_written"] > 0


def test_a_profile_of_the_service_configuration_is_what_process_runs(tmp_path, mixed_scenes):
    """`veil process --config FILE --profile NAME` masks as `veil serve` would with that profile: here solid fill,
    every class (the profile leaves the classes at the shipped ones), judged on the published pixels."""
    from tests.integration.pixel_check import assert_masked, box_slices, pixels

    config = tmp_path / "veil.toml"
    config.write_text(f'[[folders]]\nname = "share"\ningest = "{tmp_path}/share"\noutput = "{tmp_path}/done"\n'
                      'profile = "site"\n\n[profiles.site.mask]\nstyle = "solid"\n')
    inputs = tmp_path / "in"
    inputs.mkdir()
    scene = mixed_scenes[0]
    shutil.copy(scene.path, inputs / scene.path.name)
    result = veil("process", inputs, "-o", tmp_path / "out", "--config", config, "--profile", "site")
    assert result.returncode == 0, result.stderr
    published = tmp_path / "out" / scene.path.name
    assert QCReport.from_json(published.with_name(published.name + ".veil.json").read_text()).params["mask"]["style"] == "solid"
    assert_masked(scene, published)
    output = pixels(published)
    for _, x1, y1, x2, y2 in scene.boxes:  # filled: the middle of every box is one colour
        w, h = x2 - x1, y2 - y1
        ys, xs = box_slices((x1 + 0.3 * w, y1 + 0.3 * h, x2 - 0.3 * w, y2 - 0.3 * h), output.shape)
        assert output[ys, xs].std(axis=(0, 1)).max() < 1, (x1, y1, x2, y2)  # the shipped blur: 2.7-3.4
