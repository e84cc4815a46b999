"""Mixed scenes: faces and licence plates in the same photo, with exact ground truth for both.

The evaluation sets label one class each, so a test on any one of them can only see one class at work.
Here real faces, cut from the colour face sets (``rbnr_faces``, ``dlib_faces_voc``) with a margin around
their ground-truth box, are feathered (soft alpha edge) into the plate photos (``openalpr_endtoend``,
``ucsd_lp``, ``ccpd_sample``):

- a face crop is the annotated box grown by ``MARGIN`` of its size on each side; a crop whose area touches
  another annotated face of its photo is not used (it would bring an unlabelled face along); the alpha is 1
  on the whole ground-truth box and ramps down to 0 across the margin, so the box holds the source face's
  pixels exactly (resampled) and only the margin is blended;
- the pasted face's height is ``FACE_TO_PLATE`` times the photo's plate height (at least ``MIN_FACE``
  pixels, at most ``MAX_FACE_SHARE`` of the photo's height), from a source face that needs at most
  ``MAX_UPSCALE`` of enlargement;
- 1-3 faces per photo, placed at random where their crop touches neither the plate (grown by ``PLATE_GAP``)
  nor another pasted crop; a photo where no face fits is left out;
- the pasted face box is the source's ground-truth box scaled and translated exactly as pasted (box edges in
  pixel-edge coordinates, so a resize by s maps an edge x to x * s), clipped to the image; the plate box(es)
  are the photo's own.

Everything is seeded: one scene's random stream depends only on (seed, plate set, image id), so a subset
(``count``) holds the same scenes as the whole set. ``build_mixed_set`` writes ``images/`` and a COCO
``annotations.json`` (category 1 = face, 2 = license_plate, as in ../shared/eval); ``scene_clip_spec`` turns one
scene into a ``video_eval.ClipSpec`` so it can be rendered as a moving-camera clip.

Evaluation tooling, like ``video_eval``: nothing here is imported by the product.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipeline.eval.video import FACE_SETS, ClipSpec
from pipeline.records import ObjectClass

MIXED_PLATE_SETS = ("openalpr_endtoend", "ucsd_lp", "ccpd_sample")
MARGIN = 0.35  # crop margin around the face box, share of the box's width/height on each side
MIN_SOURCE_SIDE = 24  # source face boxes smaller than this (either side) are not used
FACE_TO_PLATE = (1.0, 2.2)  # pasted face height / plate height, drawn uniformly
MIN_FACE = 28  # pixels: the smallest pasted face height
MAX_FACE_SHARE = 0.3  # of the photo's height: the largest pasted face height
MAX_UPSCALE = 2.5  # a source face is enlarged at most this much
PLATE_GAP = 0.3  # the plate box grown by this share of its height (and width / 4) on each side stays clear
FACES_PER_SCENE = (1, 3)
PLACEMENT_TRIES = 200
JPEG_QUALITY = 95
FACE = int(ObjectClass.FACE)
PLATE = int(ObjectClass.LICENSE_PLATE)


@dataclass(frozen=True)
class FaceCrop:
    """One annotated source face with its margin, cut from its photo (BGR)."""

    source_set: str
    image_id: int
    annotation_id: int
    pixels: np.ndarray  # the crop, BGR uint8
    box: tuple[float, float, float, float]  # the ground-truth box inside the crop, x1 y1 x2 y2 (pixel edges)


@dataclass(frozen=True)
class PlatePhoto:
    source_set: str
    image_id: int
    path: Path
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2
    annotation_ids: tuple[int, ...]


@dataclass
class Scene:
    """A composed photo (BGR) and its ground truth: plates first, then the pasted faces."""

    name: str
    image: np.ndarray
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2
    classes: np.ndarray  # (N,) ObjectClass values
    sources: list[dict] = field(default_factory=list)  # per box: where it came from

    @property
    def faces(self) -> int:
        return int((self.classes == FACE).sum())


def _xyxy(bbox: list[float]) -> tuple[float, float, float, float]:
    x, y, w, h = bbox
    return float(x), float(y), float(x + w), float(y + h)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def face_pool(eval_root: Path, sets: tuple[str, ...] = FACE_SETS, *, margin: float = MARGIN,
              min_side: float = MIN_SOURCE_SIDE) -> list[FaceCrop]:
    """Every usable face of ``sets``: big enough, its margin inside the photo (at least half of it on each
    side) and free of any other annotated face."""
    pool = []
    for name in sets:
        data = json.loads((eval_root / name / "annotations.json").read_text())
        per_image: dict[int, list[dict]] = {}
        for ann in data["annotations"]:
            if ann["category_id"] == FACE and not ann.get("iscrowd"):
                per_image.setdefault(ann["image_id"], []).append(ann)
        for image in sorted(data["images"], key=lambda i: i["id"]):
            anns = per_image.get(image["id"], [])
            pixels = None
            for ann in sorted(anns, key=lambda a: a["id"]):
                x1, y1, x2, y2 = _xyxy(ann["bbox"])
                w, h = x2 - x1, y2 - y1
                if min(w, h) < min_side or "bbox_unclipped" in ann:
                    continue
                want = (x1 - margin * w, y1 - margin * h, x2 + margin * w, y2 + margin * h)
                crop = (max(0, int(np.floor(want[0]))), max(0, int(np.floor(want[1]))),
                        min(image["width"], int(np.ceil(want[2]))), min(image["height"], int(np.ceil(want[3]))))
                kept = (x1 - crop[0], y1 - crop[1], crop[2] - x2, crop[3] - y2)
                if min(kept[0], kept[2]) < 0.5 * margin * w or min(kept[1], kept[3]) < 0.5 * margin * h:
                    continue  # too close to the photo's edge for a soft margin
                if any(_overlaps(crop, _xyxy(other["bbox"])) for other in anns if other["id"] != ann["id"]):
                    continue  # another (labelled) face in the margin: unlabelled once pasted
                if pixels is None:
                    pixels = cv2.imread(str(eval_root / name / "images" / image["file_name"]), cv2.IMREAD_COLOR)
                    if pixels is None:
                        raise FileNotFoundError(eval_root / name / "images" / image["file_name"])
                pool.append(FaceCrop(name, image["id"], ann["id"], pixels[crop[1]:crop[3], crop[0]:crop[2]].copy(),
                                     (x1 - crop[0], y1 - crop[1], x2 - crop[0], y2 - crop[1])))
    return pool


def plate_photos(eval_root: Path, sets: tuple[str, ...] = MIXED_PLATE_SETS) -> list[PlatePhoto]:
    """The photos of ``sets`` that hold at least one labelled plate, in (set, image id) order."""
    photos = []
    for name in sets:
        folder = eval_root / name
        if not (folder / "annotations.json").is_file():
            continue
        data = json.loads((folder / "annotations.json").read_text())
        per_image: dict[int, list[dict]] = {}
        for ann in data["annotations"]:
            if ann["category_id"] == PLATE and not ann.get("iscrowd"):
                per_image.setdefault(ann["image_id"], []).append(ann)
        for image in sorted(data["images"], key=lambda i: i["id"]):
            anns = sorted(per_image.get(image["id"], []), key=lambda a: a["id"])
            if anns:
                photos.append(PlatePhoto(name, image["id"], folder / "images" / image["file_name"],
                                         np.array([_xyxy(a["bbox"]) for a in anns]), tuple(a["id"] for a in anns)))
    return photos


def scene_rng(seed: int, photo: PlatePhoto) -> np.random.Generator:
    """The random stream of one scene: a function of the seed and the photo only."""
    set_index = MIXED_PLATE_SETS.index(photo.source_set) if photo.source_set in MIXED_PLATE_SETS else 99
    return np.random.default_rng([seed, set_index, photo.image_id])


def feather_alpha(size: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """Alpha (h, w) float32 for a crop of ``size`` (w, h): 1 wherever a pixel's centre is inside ``box``,
    ramping smoothly to 0 at the crop's edges across the margin on each side."""
    w, h = size
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5

    def ramp(coord: np.ndarray, start: float, end: float, length: int) -> np.ndarray:
        low = np.clip(coord / start, 0, 1) if start > 0 else np.ones_like(coord)
        high = np.clip((length - coord) / (length - end), 0, 1) if length > end else np.ones_like(coord)
        return np.minimum(low, high)

    a = np.minimum(ramp(ys, box[1], box[3], h)[:, None], ramp(xs, box[0], box[2], w)[None, :])
    return (a * a * (3 - 2 * a)).astype(np.float32)  # smoothstep


def paste_face(canvas: np.ndarray, face: FaceCrop, scale: float, origin: tuple[int, int]) -> tuple[float, float, float, float]:
    """Resize ``face`` by ``scale``, blend it into ``canvas`` (in place) with its top-left corner at ``origin``
    and return its ground-truth box in canvas pixels (clipped to the canvas)."""
    ch, cw = face.pixels.shape[:2]
    nw, nh = max(1, round(cw * scale)), max(1, round(ch * scale))
    sx, sy = nw / cw, nh / ch  # the exact scale of each axis after rounding the size
    resized = cv2.resize(face.pixels, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    box = (face.box[0] * sx, face.box[1] * sy, face.box[2] * sx, face.box[3] * sy)
    alpha = feather_alpha((nw, nh), box)[:, :, None]
    x0, y0 = origin
    H, W = canvas.shape[:2]
    vx0, vy0, vx1, vy1 = max(0, x0), max(0, y0), min(W, x0 + nw), min(H, y0 + nh)
    if vx1 <= vx0 or vy1 <= vy0:
        raise ValueError("the face lies outside the canvas")
    part = (slice(vy0 - y0, vy1 - y0), slice(vx0 - x0, vx1 - x0))
    region = canvas[vy0:vy1, vx0:vx1].astype(np.float32)
    blended = alpha[part] * resized[part].astype(np.float32) + (1 - alpha[part]) * region
    canvas[vy0:vy1, vx0:vx1] = np.clip(blended.round(), 0, 255).astype(np.uint8)
    return (min(W, max(0.0, x0 + box[0])), min(H, max(0.0, y0 + box[1])),
            min(W, max(0.0, x0 + box[2])), min(H, max(0.0, y0 + box[3])))


def compose_scene(photo: PlatePhoto, pool: list[FaceCrop], rng: np.random.Generator, *,
                  faces: tuple[int, int] = FACES_PER_SCENE) -> Scene | None:
    """Paste 1-3 faces of ``pool`` into ``photo``; None when not one face fits beside the plate(s)."""
    image = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(photo.path)
    H, W = image.shape[:2]
    plate_h = float(np.median(photo.boxes[:, 3] - photo.boxes[:, 1]))
    keep_clear = [(x1 - (x2 - x1) / 4 - PLATE_GAP * (y2 - y1), y1 - PLATE_GAP * (y2 - y1) - 4,
                   x2 + (x2 - x1) / 4 + PLATE_GAP * (y2 - y1), y2 + PLATE_GAP * (y2 - y1) + 4) for x1, y1, x2, y2 in photo.boxes]
    source_heights = np.array([f.box[3] - f.box[1] for f in pool])
    wanted = int(rng.integers(faces[0], faces[1] + 1))
    boxes, sources = [], []
    for _ in range(wanted):
        target = float(np.clip(plate_h * rng.uniform(*FACE_TO_PLATE), MIN_FACE, MAX_FACE_SHARE * H))
        usable = np.flatnonzero(source_heights * MAX_UPSCALE >= target)
        if not len(usable):
            usable = np.array([int(np.argmax(source_heights))])
        face = pool[int(rng.choice(usable))]
        scale = target / (face.box[3] - face.box[1])
        nw, nh = round(face.pixels.shape[1] * scale), round(face.pixels.shape[0] * scale)
        if nw >= W or nh >= H:
            continue
        for _ in range(PLACEMENT_TRIES):
            x0, y0 = int(rng.integers(0, W - nw + 1)), int(rng.integers(0, H - nh + 1))
            rect = (x0, y0, x0 + nw, y0 + nh)
            if not any(_overlaps(rect, other) for other in keep_clear):
                break
        else:
            continue  # no room for this one
        keep_clear.append((x0 - 2, y0 - 2, x0 + nw + 2, y0 + nh + 2))
        boxes.append(paste_face(image, face, scale, (x0, y0)))
        sources.append({"class": "face", "source_set": face.source_set, "image_id": face.image_id,
                        "annotation_id": face.annotation_id, "scale": round(scale, 4)})
    if not boxes:
        return None
    plates = [{"class": "license_plate", "source_set": photo.source_set, "image_id": photo.image_id,
               "annotation_id": a} for a in photo.annotation_ids]
    return Scene(
        name=f"{photo.source_set}-{photo.image_id}", image=image,
        boxes=np.vstack([photo.boxes, np.array(boxes)]),
        classes=np.array([PLATE] * len(photo.boxes) + [FACE] * len(boxes)),
        sources=plates + sources,
    )


def scene_for(eval_root: Path, source_set: str, image_id: int, *, seed: int = 0,
              pool: list[FaceCrop] | None = None) -> Scene | None:
    """The scene ``build_mixed_set`` makes (same seed) from one plate photo."""
    photo = next(p for p in plate_photos(eval_root, (source_set,)) if p.image_id == image_id)
    return compose_scene(photo, pool if pool is not None else face_pool(eval_root), scene_rng(seed, photo))


def scene_clip_spec(scene: Scene, path: Path) -> ClipSpec:
    """Write the scene's photo to ``path`` (PNG keeps it exact) and describe it for ``video_eval.render_clip``."""
    if not cv2.imwrite(str(path), scene.image):
        raise OSError(f"cannot write {path}")
    return ClipSpec(photo=path, boxes=scene.boxes.astype(np.float64), classes=scene.classes.copy(),
                    object_ids=np.arange(1, len(scene.boxes) + 1), name=scene.name)


def choose_photos(photos: list[PlatePhoto], count: int | dict[str, int] | None, seed: int) -> list[PlatePhoto]:
    """A seeded choice of ``count`` photos (all when None); a dict gives the count per plate set (a set it
    does not name contributes nothing). The order stays (set, image id)."""
    if count is None:
        return photos
    if isinstance(count, dict):
        chosen = []
        for number, name in enumerate(MIXED_PLATE_SETS + tuple(sorted(set(count) - set(MIXED_PLATE_SETS)))):
            of_set = [p for p in photos if p.source_set == name]
            chosen += choose_photos(of_set, min(count.get(name, 0), len(of_set)), seed + 1000 * (number + 1))
        return chosen
    if count >= len(photos):
        return photos
    picked = np.random.default_rng(seed).choice(len(photos), size=count, replace=False)
    return [photos[i] for i in sorted(picked)]


def build_mixed_set(eval_root: Path, out_dir: Path, *, count: int | dict[str, int] | None = None, seed: int = 0,
                    plate_sets: tuple[str, ...] = MIXED_PLATE_SETS,
                    log: Callable[[str], None] = lambda message: None) -> Path:
    """Compose the mixed set into ``out_dir`` (``images/`` and ``annotations.json``); return the annotations'
    path. ``count``: a seeded choice of that many plate photos, or of so many per plate set when a dict (all
    photos when None); a scene itself does not depend on ``count``."""
    photos = choose_photos(plate_photos(eval_root, plate_sets), count, seed)
    pool = face_pool(eval_root)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images: list[dict] = []
    annotations: list[dict] = []
    skipped: list[str] = []
    for photo in photos:
        scene = compose_scene(photo, pool, scene_rng(seed, photo))
        if scene is None:
            skipped.append(f"{photo.source_set}-{photo.image_id}")
            continue
        image_id = len(images) + 1
        file_name = f"{photo.source_set}_{photo.image_id:04d}.jpg"
        cv2.imwrite(str(images_dir / file_name), scene.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        height, width = scene.image.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height,
                       "source_set": photo.source_set, "source_image_id": photo.image_id,
                       "source_file": str(photo.path.relative_to(eval_root))})
        for box, category, source in zip(scene.boxes, scene.classes, scene.sources):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(category),
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "area": round((x2 - x1) * (y2 - y1), 2), "iscrowd": 0, "source": source,
            })
        log(f"{file_name}: {scene.faces} face(s)")
    data = {
        "info": {"description": "Veil mixed scenes: faces from rbnr_faces/dlib_faces_voc feathered into plate photos",
                 "seed": seed, "count": count, "plate_sets": list(plate_sets), "face_sets": list(FACE_SETS),
                 "skipped": skipped, "generator": "pipeline/eval/mixed_scenes.py"},
        "images": images, "annotations": annotations,
        "categories": [{"id": FACE, "name": "face"}, {"id": PLATE, "name": "license_plate"}],
    }
    path = out_dir / "annotations.json"
    path.write_text(json.dumps(data, indent=1))
    return path
