"""The moving-camera ground truth and its metrics, checked on a synthetic photo (no evaluation data needed)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipeline.eval.video import ClipSpec, GroundTruth, Motion, render_clip, score_clip
from pipeline.eval.video_summary import ClipResult, frame_ranges, review_routing, summarise
from pipeline.params import MaskParams
from pipeline.records import ObjectClass
from pipeline.track.matching import iou_matrix

FACE = int(ObjectClass.FACE)
SQUARES = np.array([[300.0, 200, 360, 260], [500, 260, 540, 300]])


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, GroundTruth]:
    folder = tmp_path_factory.mktemp("gt")
    photo = np.zeros((480, 720, 3), dtype=np.uint8)
    for x1, y1, x2, y2 in SQUARES.astype(int):
        photo[y1:y2, x1:x2] = 255  # two white objects on black: their true position is easy to find
    cv2.imwrite(str(folder / "photo.png"), photo)
    spec = ClipSpec(folder / "photo.png", SQUARES, np.array([FACE, FACE]), np.array([11, 22]), "synthetic")
    truth = render_clip(spec, folder / "clip.mp4", size=(320, 180), frames=24, seed=1, motion=Motion(shake_px=1.5))
    return folder / "clip.mp4", truth


def test_ground_truth_boxes_sit_on_the_rendered_objects(clip):
    path, truth = clip
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(frames) == len(truth.frames) == 24
    checked = 0
    for image, gt in zip(frames, truth.frames):
        _, labels, stats, _ = cv2.connectedComponentsWithStats((image > 128).astype(np.uint8))
        blobs = np.array([[x, y, x + w, y + h] for x, y, w, h, area in stats[1:] if area > 20], dtype=float)
        for box in gt["boxes"]:
            assert len(blobs), "an object in the ground truth is not in the picture"
            assert iou_matrix(np.array([box]), blobs).max() > 0.75
            checked += 1
    assert checked >= 24  # at least one object on every frame


def test_on_a_tilted_camera_a_face_box_hugs_the_face_and_a_plate_box_holds_the_plate(tmp_path):
    """``Motion.tilt_deg`` rolls the camera for good: a face's box follows its inscribed ellipse (a round face
    keeps a box its size), a plate's the turned corners (the whole plate stays inside)."""
    photo = np.zeros((480, 720, 3), dtype=np.uint8)
    cv2.circle(photo, (330, 230), 30, (255, 255, 255), -1)  # a round "face" in the box 300..360, 200..260
    photo[300:320, 460:560] = 255  # a "plate"
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    boxes = np.array([[300.0, 200, 361, 261], [460, 300, 560, 320]])
    spec = ClipSpec(tmp_path / "photo.png", boxes, np.array([FACE, int(ObjectClass.LICENSE_PLATE)]), np.array([1, 2]), "tilted")
    motion = Motion(tilt_deg=40.0, roll_deg=0.0, shake_px=0.0, shutter_samples=1, pan_px=0.0, whip_px=0.0, zoom=(1.0, 1.0))
    truth = render_clip(spec, tmp_path / "clip.mp4", size=(320, 180), frames=3, seed=1, motion=motion)
    with av.open(str(tmp_path / "clip.mp4")) as container:
        image = next(container.decode(video=0)).to_ndarray(format="gray")
    _, labels, stats, _ = cv2.connectedComponentsWithStats((image > 128).astype(np.uint8))
    face_box, plate_box = (np.array(box) for box in truth.frames[0]["boxes"])
    disc = max(range(1, len(stats)), key=lambda i: stats[i][4] / (stats[i][2] * stats[i][3]))  # the roundest blob
    x, y, w, h, _ = stats[disc]
    assert iou_matrix(face_box[None], np.array([[x, y, x + w, y + h]], dtype=float))[0, 0] > 0.8
    bar = np.argwhere(labels == next(i for i in range(1, len(stats)) if i != disc))  # (row, col) of the plate's pixels
    assert (bar[:, 1] >= plate_box[0] - 1).all() and (bar[:, 1] <= plate_box[2] + 1).all()
    assert (bar[:, 0] >= plate_box[1] - 1).all() and (bar[:, 0] <= plate_box[3] + 1).all()
    assert bar[:, 0].max() - bar[:, 0].min() > 30  # it is tilted: 20 px tall when upright


def test_camera_moves_the_objects(clip):
    _, truth = clip
    centres = [np.mean(np.array(f["boxes"])[:, [0, 2]]) for f in truth.frames if f["boxes"]]
    assert max(centres) - min(centres) > 40  # the pan and the whip moved them across the frame


def write_companion(path: Path, truth: GroundTruth, drop: dict[int, set[int]]) -> None:
    """A boxes companion whose masks are the ground truth itself, except objects dropped on given frames."""
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps({"schema": "veil.boxes/1", "width": truth.width, "height": truth.height}) + "\n")
        for index, gt in enumerate(truth.frames):
            mask, trk = [], []
            for object_id, box in zip(gt["ids"], gt["boxes"]):
                trk.append([object_id, FACE, *box, "detection"])
                if object_id not in drop.get(index, set()):
                    mask.append([*box, FACE, 0.9, object_id, "detection"])
            handle.write(json.dumps({"f": index, "det": [], "trk": trk, "mask": mask}) + "\n")
        handle.write(json.dumps({"end": True, "frames": len(truth.frames)}) + "\n")


def test_perfect_masks_score_full_recall_and_tracking(clip, tmp_path):
    _, truth = clip
    write_companion(tmp_path / "b.jsonl.gz", truth, {})
    result = score_clip("c", truth, tmp_path / "b.jsonl.gz", MaskParams(), (ObjectClass.FACE,))
    summary = summarise([result])
    assert summary["mask_recall"] == 1.0 and summary["longest_unmasked_run"] == 0
    assert summary["tracking_all_tracks"]["IDF1"] == pytest.approx(1.0)
    assert summary["tracking_all_tracks"]["HOTA"] == pytest.approx(1.0)


def test_unmasked_frames_count_and_the_longest_run_is_found(clip, tmp_path):
    _, truth = clip
    first = truth.frames[5]["ids"][0]
    drop = {5: {first}, 6: {first}, 12: {first}}
    write_companion(tmp_path / "b.jsonl.gz", truth, drop)
    result = score_clip("c", truth, tmp_path / "b.jsonl.gz", MaskParams(), (ObjectClass.FACE,))
    assert result.box_frames - result.masked_box_frames == 3
    assert result.longest_unmasked_run[first] == 2
    assert result.unmasked_frames == {first: [5, 6, 12]}
    summary = summarise([result])
    assert summary["objects_unmasked_2plus"] == 1
    assert summary["per_clip"][0]["unmasked_frames"] == {first: "5-6,12"}


def test_frame_ranges_are_written_as_runs():
    assert frame_ranges([2, 3, 4, 9, 11, 12]) == "2-4,9,11-12"
    assert frame_ranges([7]) == "7" and frame_ranges([]) == ""


def test_the_review_router_is_scored_as_a_classifier_of_leaking_clips():
    def clip_result(name: str, masked: int, disposition: str) -> ClipResult:
        return ClipResult(name, 10, masked, {1: 10 - masked}, 10, {}, {}, disposition=disposition)

    results = [clip_result("leak, routed", 7, "review"), clip_result("leak, done", 9, "done"),
               clip_result("clean, routed", 10, "review"), clip_result("clean", 10, "done")]
    assert review_routing(results) == {"routed": 2, "review_rate": 0.5, "leaking": 2, "captured": 1, "leak_capture": 0.5}
    assert review_routing(results[2:])["leak_capture"] is None  # nothing leaked: nothing to capture
