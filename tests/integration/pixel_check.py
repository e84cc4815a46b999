"""Real photos that hold faces AND plates, and an independent check of the pixels `veil serve` published.

Claims about what the product publishes run the shipped defaults on mixed scenes (pipeline/eval/mixed_scenes.py:
real ucsd_lp plate photos, 640x480, with real faces feathered in and exact COCO boxes) and check the published
pixels against the input inside every ground-truth box, without reading the sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import EVAL, eval_set

MIXED_SEED = 0
MIXED_COUNT = 8  # 640x480 ucsd_lp photos, each with its labelled plate and 1-3 pasted real faces
MASK_DIFF = 10  # a pixel "changed" when a channel moved by more than this (JPEG q95 re-encoding: 0 % of box pixels)
MASKED_SHARE = 0.5  # a box is masked when at least this share of its pixels changed (measured: 0.62-1.0)
CONTROL_MARGIN = 0.6  # the untouched control area: everything outside the ground-truth boxes grown by this much
CONTROL_MAX_SHARE = 0.2  # ... changes on at most this share of its pixels (background plates/faces may be masked)


class Scene:
    """One mixed photo: its file and ground-truth boxes (class id, x1, y1, x2, y2) in its pixels."""

    def __init__(self, path: Path, boxes: list[tuple[int, float, float, float, float]]) -> None:
        self.path, self.boxes = path, boxes

    def classes(self) -> set[int]:
        return {box[0] for box in self.boxes}

@pytest.fixture(scope="session")
def mixed_scenes(tmp_path_factory) -> list[Scene]:
    """Real plate photos (ucsd_lp) with real faces (rbnr_faces, dlib_faces_voc) feathered in, exact COCO boxes."""
    for name in ("ucsd_lp", "rbnr_faces", "dlib_faces_voc"):
        eval_set(name)
    from pipeline.eval.mixed_scenes import build_mixed_set

    root = tmp_path_factory.mktemp("mixed")
    coco = json.loads(build_mixed_set(EVAL, root, count={"ucsd_lp": MIXED_COUNT}, seed=MIXED_SEED).read_text())
    scenes = []
    for image in coco["images"]:
        boxes = [(a["category_id"], a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3])
                 for a in coco["annotations"] if a["image_id"] == image["id"]]
        scenes.append(Scene(root / "images" / image["file_name"], boxes))
    assert len(scenes) == MIXED_COUNT and all(s.classes() == {1, 2} for s in scenes), "each scene: faces and plates"
    return scenes

def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)

def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per pixel: did any channel move by more than MASK_DIFF (well beyond JPEG noise at the output quality)?"""
    assert before.shape == after.shape, (before.shape, after.shape)
    return np.abs(before - after).max(axis=2) > MASK_DIFF

def box_slices(box: tuple[float, float, float, float], shape: tuple[int, ...], grow: float = 0.0) -> tuple[slice, slice]:
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * grow, (y2 - y1) * grow
    return (slice(max(0, int(np.floor(y1 - dy))), min(shape[0], int(np.ceil(y2 + dy)))),
            slice(max(0, int(np.floor(x1 - dx))), min(shape[1], int(np.ceil(x2 + dx)))))

def masked_shares(scene: Scene, published: Path) -> tuple[list[float], float]:
    """(share of changed pixels inside each ground-truth box, share changed outside all boxes grown by
    CONTROL_MARGIN): the published pixels against the input's, never the sidecar."""
    diff = changed(pixels(scene.path), pixels(published))
    inside = [float(diff[box_slices(box[1:], diff.shape)].mean()) for box in scene.boxes]
    control = np.ones(diff.shape, dtype=bool)
    for box in scene.boxes:
        control[box_slices(box[1:], diff.shape, CONTROL_MARGIN)] = False
    return inside, float(diff[control].mean())

def assert_masked(scene: Scene, published: Path) -> None:
    """Every face and plate box of ``scene`` masked in ``published``, and the control area left alone."""
    inside, outside = masked_shares(scene, published)
    leaks = [(box, round(share, 3)) for box, share in zip(scene.boxes, inside) if share < MASKED_SHARE]
    assert not leaks, f"{published}: ground-truth boxes (class, x1, y1, x2, y2) not masked: {leaks}"
    assert outside <= CONTROL_MAX_SHARE, f"{published}: {outside:.3f} of the area away from every box changed"

def assert_sheet_shows_masked(scene: Scene, published: Path, sheet_path: Path) -> None:
    """Inside each ground-truth box (its middle, away from drawn outlines) the contact sheet, brought back to the
    photo's size, is nearer the published (masked) pixels than the input's."""
    original, output = pixels(scene.path).astype(np.float32), pixels(published).astype(np.float32)
    sheet_image = Image.open(sheet_path).convert("RGB")
    scale = sheet_image.width / output.shape[1]
    sheet = np.asarray(sheet_image.resize((output.shape[1], int(round(sheet_image.height / scale)))), dtype=np.float32)
    for _, x1, y1, x2, y2 in scene.boxes:
        w, h = x2 - x1, y2 - y1
        ys, xs = box_slices((x1 + 0.3 * w, y1 + 0.3 * h, x2 - 0.3 * w, y2 - 0.3 * h), output.shape)
        to_output = np.abs(sheet[ys, xs] - output[ys, xs]).mean()
        to_original = np.abs(sheet[ys, xs] - original[ys, xs]).mean()
        assert to_output < to_original / 2, (sheet_path.name, (x1, y1, x2, y2), to_output, to_original)
