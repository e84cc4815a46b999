"""What `veil serve` publishes: every face and plate of real photos masked, judged on the pixels alone (and
first, that this check can fail); a burst handled once each, with bounded memory and backpressure; contact
sheets that show masked pixels only. The shipped profile unless a test says otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.integration.pixel_check import (
    MASKED_SHARE,
    assert_masked,
    assert_sheet_shows_masked,
    box_slices,
    masked_shares,
)
from tests.integration.serve_harness import (
    REVIEW_PROFILE,
    SHIPPED_PROFILE,
    assert_each_once,
    files,
    published_file,
    wait_for,
    write_image,
    write_video,
)

pytestmark = pytest.mark.usefixtures("models_installed")


def test_the_pixel_check_fails_an_unmasked_copy_and_a_missed_box(mixed_scenes, tmp_path):
    """The measure can fail: the input re-encoded (no mask) fails every box; masking all but one box fails that one."""
    import cv2

    scene = mixed_scenes[0]
    rgb = np.asarray(Image.open(scene.path).convert("RGB"))
    copy = tmp_path / "unmasked.jpg"
    Image.fromarray(rgb).save(copy, quality=95)
    inside, outside = masked_shares(scene, copy)
    assert max(inside) < 0.05 and outside < 0.01, (inside, outside)
    with pytest.raises(AssertionError, match="not masked"):
        assert_masked(scene, copy)
    blurred = rgb.copy()
    for _, *box in scene.boxes[1:]:  # every box but the first (its plate)
        ys, xs = box_slices(tuple(box), rgb.shape, 0.2)
        blurred[ys, xs] = cv2.GaussianBlur(blurred[ys, xs], (0, 0), 6)
    partial = tmp_path / "partial.jpg"
    Image.fromarray(blurred).save(partial, quality=95)
    inside, _ = masked_shares(scene, partial)
    assert inside[0] < 0.05 and min(inside[1:]) >= MASKED_SHARE, inside
    with pytest.raises(AssertionError, match="not masked"):
        assert_masked(scene, partial)
    whole = tmp_path / "whole.jpg"  # everything smeared: the control area catches it
    Image.fromarray(cv2.GaussianBlur(rgb, (0, 0), 6)).save(whole, quality=95)
    with pytest.raises(AssertionError, match="away from every box"):
        assert_masked(scene, whole)


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_burst_of_images_and_videos_each_processed_once(tmp_path, daemons, mixed_scenes):
    """The shipped profile, two workers: real photos with faces and plates, a video, a broken file, junk."""
    daemon = daemons(tmp_path, workers=2, profile=SHIPPED_PROFILE).start().wait_ready()
    names, scenes = [], {}
    for i, scene in enumerate(mixed_scenes):
        name = f"batch{i % 2}/{scene.path.name}"
        (daemon.ingest / name).parent.mkdir(parents=True, exist_ok=True)
        (daemon.ingest / name).write_bytes(scene.path.read_bytes())
        names.append(name)
        scenes[name] = scene
    write_video(daemon.ingest / "clip0.mp4", seconds=1.0, seed=0)
    names.append("clip0.mp4")
    (daemon.ingest / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    names.append("broken.jpg")
    (daemon.ingest / "Thumbs.db").write_bytes(b"x")
    (daemon.ingest / ".DS_Store").write_bytes(b"x")

    most_claimed = 0
    peak: dict[int, int] = {}

    def all_done() -> bool:
        nonlocal most_claimed
        status = daemon.status()
        if status:
            most_claimed = max(most_claimed, status["queue"]["claimed"])
            for pid in [daemon.proc.pid] + [w["pid"] for w in status["workers"] if w["pid"]]:
                try:
                    peak[pid] = max(peak.get(pid, 0), _vm_hwm_kib(pid))
                except (OSError, AssertionError):
                    pass
        return daemon.finished() >= len(names)

    wait_for(all_done, 600, "the burst")
    status = daemon.status()
    assert daemon.stop() == 0
    (daemon.ingest / "Thumbs.db").unlink()
    (daemon.ingest / ".DS_Store").unlink()
    reports = assert_each_once(daemon, names)
    assert reports["broken.jpg"].disposition == "failed" and reports["broken.jpg"].error.kind == "input"
    assert (tmp_path / "failed" / "broken.jpg").read_bytes().startswith(b"\xff\xd8\xff not")
    assert all(reports[n].disposition in ("done", "review") for n in names if n != "broken.jpg")
    for name in names:
        if reports[name].disposition == "review":
            assert (tmp_path / "review" / f"{name}.contact.jpg").is_file()
    assert len(files(tmp_path / "originals")) == len(names) - 1
    assert status["counts"]["failed"] == 1 and status["counts"]["duplicate"] == 0
    # What was published: every face and every plate of every photo masked, judged on the pixels alone.
    for name, scene in scenes.items():
        assert_masked(scene, published_file(tmp_path, name))
    # The shipped review policy ("leak-risk"): masked review-band detections are noted, not sent to a person.
    noted = [name for name in scenes if reports[name].review_notes]
    assert noted, "no photo had a masked review-band detection: the policy check needs one"
    for name in scenes:
        report = reports[name]
        assert all(note.endswith(", masked") for note in report.review_notes)
        assert report.disposition == ("review" if report.review_reasons else "done")
        assert not any(reason.endswith(", masked") for reason in report.review_reasons)
    # Backpressure: at most one waiting job per worker was ever claimed; the burst stayed in ingest.
    assert most_claimed <= 2
    # Memory bounded: the service process stays small, workers hold models and one file.
    # Measured here (shipped profile, both models): ~170 MB for the service, ~670-730 MB per worker.
    assert peak[daemon.proc.pid] < 300 * 1024, peak
    assert max(peak.values()) < 1024 * 1024, peak


def test_review_files_get_a_contact_sheet_of_masked_pixels_only(tmp_path, daemons):
    daemon = daemons(tmp_path, profile=REVIEW_PROFILE).start().wait_ready()
    source = tmp_path / "source.jpg"
    write_image(source, 1, size=(160, 120))
    (daemon.ingest / "noise.jpg").write_bytes(source.read_bytes())
    write_video(daemon.ingest / "clip.mp4", seconds=1.0)
    wait_for(lambda: daemon.finished() == 2, 120, "both files")
    assert daemon.stop() == 0
    reports = assert_each_once(daemon, ["noise.jpg", "clip.mp4"])
    review = tmp_path / "review"
    for name in ("noise.jpg", "clip.mp4"):
        assert reports[name].disposition == "review", reports[name].review_reasons
        assert (review / f"{name}.contact.jpg").is_file()
        assert f"{name}.contact.jpg" in reports[name].companions
    masked = [d for d in reports["noise.jpg"].detections if d.masked]
    assert masked, "the test needs masked detections"
    original = np.asarray(Image.open(source).convert("RGB"), dtype=np.float32)
    output = np.asarray(Image.open(review / "noise.jpg").convert("RGB"), dtype=np.float32)
    sheet_image = Image.open(review / "noise.jpg.contact.jpg").convert("RGB")
    scale = sheet_image.width / output.shape[1]
    sheet = np.asarray(sheet_image.resize((output.shape[1], int(round(sheet_image.height / scale)))), dtype=np.float32)
    # Inside the masked boxes the sheet shows the masked output, pixel by pixel, not the original. Pixels the
    # sheet draws on (every detection's outline and score label, large on an image this small) match neither.
    shows_output = shows_original = inside = 0
    for det in masked:
        x1, y1, x2, y2 = det.box
        w, h = x2 - x1, y2 - y1
        xs = slice(int(x1 + w * 0.3), int(np.ceil(x2 - w * 0.3)))
        ys = slice(int(y1 + h * 0.3), int(np.ceil(y2 - h * 0.3)))
        near_output = np.abs(sheet[ys, xs] - output[ys, xs]).mean(axis=2) < 12
        near_original = (np.abs(sheet[ys, xs] - original[ys, xs]).mean(axis=2) < 12) & ~near_output
        shows_output += int(near_output.sum())
        shows_original += int(near_original.sum())
        inside += near_output.size
    assert shows_output > 0.3 * inside and shows_original < 0.05 * inside, (shows_output, shows_original, inside)


def test_contact_sheets_of_real_photos_show_the_masked_pixels_inside_every_box(tmp_path, engine, mixed_scenes):
    """The shipped detector and masks under the "strict" review policy (so that these photos, whose review-band
    detections are masked, go to review): the sheet a reviewer sees holds masked pixels in every ground-truth box."""
    from pipeline.params import Params, ReviewParams
    from pipeline.run import process_file

    from daemon.publish.contact_sheet import write_contact_sheet

    params = Params(review=ReviewParams(policy="strict"))
    sheets = 0
    for scene in mixed_scenes:
        dst = tmp_path / scene.path.name
        report = process_file(scene.path, dst, params, engine, name=scene.path.name)
        if report.disposition != "review":
            continue
        sheet = dst.with_name(dst.name + ".contact.jpg")
        write_contact_sheet(dst, report, sheet)
        assert_sheet_shows_masked(scene, dst, sheet)
        sheets += 1
    assert sheets, "no photo went to review under 'strict': the sheet check needs one"
