"""The crowd clip's photo for bench/video.py: the group photos of a face set with the most labelled faces,
side by side on one grey canvas, with their face boxes moved and scaled with the pixels.

With the default set (cmu_mit_faces) and three photos: hendrix1-bigger.jpg (25 faces), Arsenal.jpg (16) and
soccer.jpg (15), each scaled to a height of 820 px: 56 faces on a canvas of 4,728 x 884 px (the photos take
3,152 px of its width; grey margins of a quarter of that on either side keep most faces in view through the
camera's 1.5x zoom and pan). At 1920x1080, bench/video.py's moving camera then has about 50 faces in view per
frame (37-55 over 60 frames; at least 40 on 92% of them), 25-77 px high (5th-95th percentile); it prints the mean.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from pipeline.eval.video import ClipSpec, load_specs
from pipeline.records import ObjectClass

CROWD_SET = "cmu_mit_faces"
PHOTOS = 3  # the photos with the most labelled faces
HEIGHT = 820  # px: every photo scaled to this height
GAP = 32  # px of grey between the photos, above and below them
SIDE_MARGIN = 0.25  # grey on the left and on the right, as a share of the photos' width together
GREY = 128

_SPECS: dict[tuple[Path, str, int, Path], ClipSpec] = {}


def most_faces(eval_root: Path, set_name: str = CROWD_SET, count: int = PHOTOS) -> list[ClipSpec]:
    """The ``count`` photos of ``set_name`` with the most labelled faces (ties: by photo name)."""
    specs = load_specs(eval_root / set_name, (ObjectClass.FACE,))
    if len(specs) < count:
        raise SystemExit(f"{set_name} has {len(specs)} photos with labelled faces, fewer than {count}")
    return sorted(specs, key=lambda s: (-len(s.boxes), s.photo.name))[:count]


def compose(specs: list[ClipSpec], height: int = HEIGHT, gap: int = GAP) -> tuple[np.ndarray, np.ndarray]:
    """One BGR canvas with the photos side by side (each scaled to ``height``), and all their boxes on it."""
    photos, boxes = [], []
    x = 0
    for spec in specs:
        image = cv2.imread(str(spec.photo), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(spec.photo)
        scale = height / image.shape[0]
        width = round(image.shape[1] * scale)
        photos.append((x, cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)))
        boxes.append(spec.boxes * [scale, scale, scale, scale] + [x, gap, x, gap])
        x += width + gap
    margin = round(SIDE_MARGIN * (x - gap))
    canvas = np.full((height + 2 * gap, x - gap + 2 * margin, 3), GREY, dtype=np.uint8)
    for left, image in photos:
        canvas[gap:gap + height, margin + left:margin + left + image.shape[1]] = image
    return canvas, np.concatenate(boxes).astype(np.float64) + [margin, 0, margin, 0]


def crowd_spec(eval_root: Path, folder: Path, set_name: str = CROWD_SET, count: int = PHOTOS) -> ClipSpec:
    """The crowd canvas as a clip spec, faces only. Its PNG goes to ``folder`` under a name with a digest of
    its pixels and boxes, so a change here renders new clips instead of reusing cached ones."""
    key = (eval_root, set_name, count, folder)
    if key not in _SPECS:
        sources = most_faces(eval_root, set_name, count)
        canvas, boxes = compose(sources)
        digest = hashlib.sha256(canvas.tobytes() + boxes.tobytes()).hexdigest()[:8]
        name = f"crowd-{set_name}-{len(boxes)}f-{digest}"
        folder.mkdir(parents=True, exist_ok=True)
        photo = folder / f"{name}.png"
        if not photo.exists() and not cv2.imwrite(str(photo), canvas):
            raise OSError(f"cannot write {photo}")
        _SPECS[key] = ClipSpec(photo=photo, boxes=boxes, classes=np.full(len(boxes), int(ObjectClass.FACE)),
                               object_ids=np.arange(1, len(boxes) + 1), name=name)
    return _SPECS[key]


def describe(eval_root: Path, spec: ClipSpec, set_name: str = CROWD_SET, count: int = PHOTOS) -> str:
    """'NAME: 56 faces from SET a.jpg (25), ...; canvas WxH px, face heights MIN-MEDIAN-MAX px'."""
    sources = ", ".join(f"{s.photo.name} ({len(s.boxes)})" for s in most_faces(eval_root, set_name, count))
    heights = spec.boxes[:, 3] - spec.boxes[:, 1]
    width, height = _size(spec.photo)
    return (f"{spec.name}: {len(spec.boxes)} faces from {set_name} {sources}; canvas {width}x{height} px, "
            f"face heights {heights.min():.0f}-{np.median(heights):.0f}-{heights.max():.0f} px (min-median-max)")


def _size(photo: Path) -> tuple[int, int]:
    image = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(photo)
    return image.shape[1], image.shape[0]
