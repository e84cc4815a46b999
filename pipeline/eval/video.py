"""Video ground truth without annotated video: a virtual camera moving over annotated photos.

A clip is rendered from one photo of an evaluation set (COCO JSON): the camera pans, zooms, rolls and shakes;
each frame averages sub-frame renders across the shutter time (motion blur); the clip is compressed with H.264.
Every frame's boxes follow from the camera's transform, so they are known exactly. The same seed, the same clip.

Metrics, computed from the boxes companion that ``process_video`` writes (the regions as masked):

- box-frame mask recall: the share of ground-truth boxes, over all frames, whose area is covered to at
  least ``COVERED`` by mask pixels (as in the image evaluation);
- per object, the longest run of consecutive frames on which it was present and not masked;
- IDF1 and HOTA of the tracks, through TrackEval.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import cv2
import numpy as np

from pipeline.detect.windows import turned_ellipses
from pipeline.eval.video_summary import ClipResult, frame_ranges, summarise
from pipeline.mask import coverage, pixel_bounds
from pipeline.params import MaskParams, Params
from pipeline.records import MaskRegion, ObjectClass
from pipeline.track.matching import iou_matrix
from pipeline.video.qc import read_boxes

if TYPE_CHECKING:
    from pipeline.detect.engine import Engine

# Evaluation photos leave some objects unlabelled (crowds, background plates): a track that never overlaps
# a ground-truth box this much is taken to follow such an object and is left out of the "annotated" scores.
UNANNOTATED_IOU = 0.3
COVERED = 0.9  # a ground-truth box counts as masked when this share of its pixels is masked
MIN_VISIBLE = 0.5  # an object is in the ground truth of a frame when this share of it is inside the frame
MIN_SIDE = 6.0  # ... and its visible part is at least this many pixels on each side
# The evaluation sets used for each class, and the smallest object (source pixels) a photo may hold.
FACE_SETS = ("rbnr_faces", "dlib_faces_voc")
PLATE_SETS = ("ucsd_lp", "openalpr_endtoend")


@dataclass(frozen=True)
class Motion:
    """How the camera moves. Pixel amounts are in output pixels per frame."""

    pan_px: float = 6.0  # mean pan speed
    whip_px: float = 24.0  # speed of one short fast pan (a "whip") in the middle of the clip
    whip_frames: int = 6
    zoom: tuple[float, float] = (1.0, 1.5)  # zoom range over the clip, relative to the starting view
    roll_deg: float = 1.5  # slow roll amplitude
    tilt_deg: float = 0.0  # a steady roll under the slow one: a camera held askew, every face leaning over
    tilt_over: tuple[int, int] = (0, 0)  # frames of a roll to ``tilt_deg`` mid-shot ((0, 0): askew throughout)
    shake_px: float = 2.5  # hand-held shake (standard deviation)
    shutter_samples: int = 3  # sub-frames averaged per frame: motion blur
    crf: int = 26  # H.264 compression of the rendered clip


@dataclass(frozen=True)
class ClipSpec:
    photo: Path
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2 in photo pixels
    classes: np.ndarray  # (N,) ObjectClass values
    object_ids: np.ndarray  # (N,) stable ids
    name: str


@dataclass
class GroundTruth:
    """Per frame, the visible objects: ids, classes and boxes (clipped to the frame)."""

    width: int
    height: int
    frames: list[dict] = field(default_factory=list)  # {"ids": [...], "classes": [...], "boxes": [[x1,y1,x2,y2]...]}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"width": self.width, "height": self.height, "frames": self.frames}))

    @classmethod
    def load(cls, path: Path) -> "GroundTruth":
        data = json.loads(path.read_text())
        return cls(data["width"], data["height"], data["frames"])


def load_specs(set_dir: Path, classes: tuple[ObjectClass, ...], *, min_box_side: float = 0.0) -> list[ClipSpec]:
    """One clip spec per photo of a COCO set, keeping the boxes of ``classes``."""
    data = json.loads((set_dir / "annotations.json").read_text())
    wanted = {int(c) for c in classes}
    per_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        if ann["category_id"] in wanted and not ann.get("iscrowd"):
            per_image.setdefault(ann["image_id"], []).append(ann)
    specs = []
    for image in sorted(data["images"], key=lambda i: i["id"]):
        anns = per_image.get(image["id"])
        if not anns:
            continue
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns])
        if min(np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])) < min_box_side:
            continue
        specs.append(ClipSpec(photo=set_dir / "images" / image["file_name"], boxes=boxes, name=f"{set_dir.name}-{image['id']}",
                              classes=np.array([a["category_id"] for a in anns]), object_ids=np.array([a["id"] for a in anns])))
    return specs


def pick_specs(specs: list[ClipSpec], count: int, seed: int) -> list[ClipSpec]:
    rng = np.random.default_rng(seed)
    if count >= len(specs):
        return specs
    return [specs[i] for i in sorted(rng.choice(len(specs), size=count, replace=False))]


def _camera(frame: float, frames: int, photo_wh: tuple[int, int], out_wh: tuple[int, int], motion: Motion,
            shake: np.ndarray, focus: np.ndarray) -> np.ndarray:
    """The 2x3 affine from photo pixels to frame pixels at (fractional) time ``frame``."""
    pw, ph = photo_wh
    ow, oh = out_wh
    base = min(ow / (0.8 * pw), oh / (0.8 * ph))  # start with most of the photo in view
    progress = frame / max(1, frames - 1)
    zoom = base * (motion.zoom[0] + (motion.zoom[1] - motion.zoom[0]) * 0.5 * (1 - math.cos(math.pi * progress)))
    # Pan: the view centre sweeps across the objects, with a whip in the middle.
    whip_start = frames / 2
    extra = np.clip(frame - whip_start, 0, motion.whip_frames) * (motion.whip_px - motion.pan_px)
    travel = (frame * motion.pan_px + extra) / zoom  # photo pixels
    total = ((frames - 1) * motion.pan_px + motion.whip_frames * (motion.whip_px - motion.pan_px)) / zoom
    centre = focus + np.array([travel - total / 2, 0.3 * (travel - total / 2) * math.sin(progress * math.pi)])
    first, last = motion.tilt_over
    askew = float(np.clip((frame - first) / (last - first), 0, 1)) if last > first else 1.0
    roll = math.radians(motion.tilt_deg * askew + motion.roll_deg * math.sin(2 * math.pi * progress))
    cos, sin = math.cos(roll) * zoom, math.sin(roll) * zoom
    shift = np.array([ow / 2, oh / 2]) + shake
    linear = np.array([[cos, -sin], [sin, cos]])
    offset = shift - linear @ centre
    return np.hstack([linear, offset[:, None]])


def _transform_boxes(boxes: np.ndarray, classes: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Photo boxes in frame pixels: a face's by its inscribed ellipse (round), a plate's by its turned corners."""
    corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], axis=1)  # N,4,2
    moved = corners @ affine[:, :2].T + affine[:, 2]
    framed = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
    faces = classes == int(ObjectClass.FACE)
    framed[faces] = turned_ellipses(boxes[faces].astype(np.float64), affine)
    return framed


def render_clip(spec: ClipSpec, out: Path, *, size: tuple[int, int] = (640, 360), frames: int = 60,
                fps: int = 30, seed: int = 0, motion: Motion = Motion()) -> GroundTruth:
    """Render ``spec`` into an H.264 MP4 at ``out`` and return its ground truth."""
    bgr = cv2.imread(str(spec.photo), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(spec.photo)
    photo = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    ph, pw = photo.shape[:2]
    ow, oh = size
    rng = np.random.default_rng(seed)
    # Shake: smoothed noise, one value per sub-frame.
    samples = frames * motion.shutter_samples
    raw = rng.normal(0, motion.shake_px, size=(samples + 8, 2))
    shake = np.array([raw[i : i + 8].mean(axis=0) * math.sqrt(8) for i in range(samples)])
    focus = np.array([(spec.boxes[:, 0].min() + spec.boxes[:, 2].max()) / 2, (spec.boxes[:, 1].min() + spec.boxes[:, 3].max()) / 2])
    truth = GroundTruth(ow, oh)
    with av.open(str(out), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(motion.crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = ow, oh, "yuv420p"
        for index in range(frames):
            acc = np.zeros((oh, ow, 3), dtype=np.float32)
            for s in range(motion.shutter_samples):
                t = index + (s - (motion.shutter_samples - 1) / 2) / motion.shutter_samples * 0.5  # half-open shutter
                affine = _camera(t, frames, (pw, ph), (ow, oh), motion, shake[index * motion.shutter_samples + s], focus)
                acc += cv2.warpAffine(photo, affine, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            image = (acc / motion.shutter_samples).round().astype(np.uint8)
            mid = _camera(index, frames, (pw, ph), (ow, oh), motion, shake[index * motion.shutter_samples + motion.shutter_samples // 2], focus)
            truth.frames.append(_visible(spec, _transform_boxes(spec.boxes, spec.classes, mid), ow, oh))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return truth


def _visible(spec: ClipSpec, boxes: np.ndarray, width: int, height: int) -> dict:
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (cw * ch >= MIN_VISIBLE * area) & (cw >= MIN_SIDE) & (ch >= MIN_SIDE)
    return {
        "ids": [int(i) for i in spec.object_ids[keep]],
        "classes": [int(c) for c in spec.classes[keep]],
        "boxes": [[round(float(v), 2) for v in b] for b in clipped[keep]],
    }


def score_clip(name: str, truth: GroundTruth, boxes_file: Path, mask_params: MaskParams,
               classes: tuple[ObjectClass, ...]) -> ClipResult:
    """Compare the masks and tracks in ``boxes_file`` with ``truth``."""
    records = read_boxes(boxes_file)
    header = next(records)
    if (header["width"], header["height"]) != (truth.width, truth.height):
        raise ValueError(f"{name}: frame size {header['width']}x{header['height']} differs from the ground truth")
    shape = (truth.height, truth.width)
    wanted = {int(c) for c in classes}
    box_frames = masked = 0
    runs: dict[int, int] = {}
    longest: dict[int, int] = {}
    masked_frames: dict[int, int] = {}
    unmasked: dict[int, list[int]] = {}
    gt_ids, tr_ids, sims = [], [], []
    seen = 0
    for record, gt in zip(records, truth.frames):
        seen += 1
        regions = [MaskRegion(tuple(r[:4]), ObjectClass(r[4]), r[5], r[7]) for r in record["mask"]]
        covered = coverage(shape, regions, mask_params)
        keep = [i for i, c in enumerate(gt["classes"]) if c in wanted]
        gboxes = np.array([gt["boxes"][i] for i in keep]).reshape(-1, 4)
        ids = [gt["ids"][i] for i in keep]
        present = set(ids)
        for object_id, box in zip(ids, gboxes):
            x0, y0, x1, y1 = pixel_bounds(box, shape)
            share = covered[y0:y1, x0:x1].mean() if x1 > x0 and y1 > y0 else 1.0
            box_frames += 1
            masked_frames.setdefault(object_id, 0)
            if share >= COVERED:
                masked += 1
                masked_frames[object_id] += 1
                runs[object_id] = 0
            else:
                runs[object_id] = runs.get(object_id, 0) + 1
                unmasked.setdefault(object_id, []).append(seen - 1)
            longest[object_id] = max(longest.get(object_id, 0), runs[object_id])
        for object_id in [o for o in runs if o not in present]:
            runs[object_id] = 0  # out of view ends a run
        tracks = [t for t in record["trk"] if t[1] in wanted]
        tboxes = np.array([t[2:6] for t in tracks], dtype=np.float64).reshape(-1, 4)
        tboxes[:, [0, 2]] = tboxes[:, [0, 2]].clip(0, truth.width)
        tboxes[:, [1, 3]] = tboxes[:, [1, 3]].clip(0, truth.height)
        gt_ids.append(ids)
        tr_ids.append([t[0] for t in tracks])
        sims.append(iou_matrix(gboxes, tboxes))
    if seen != len(truth.frames):
        raise ValueError(f"{name}: {seen} frames in the output's boxes, {len(truth.frames)} in the ground truth")
    touching = {t for ids_t, s in zip(tr_ids, sims) for j, t in enumerate(ids_t) if s.shape[0] and s[:, j].max() >= UNANNOTATED_IOU}
    kept = [[j for j, t in enumerate(f) if t in touching] for f in tr_ids]
    annotated = _trackeval_data(gt_ids, [[f[j] for j in k] for f, k in zip(tr_ids, kept)], [s[:, k] for s, k in zip(sims, kept)])
    never = sum(1 for count in masked_frames.values() if not count)
    return ClipResult(name, box_frames, masked, longest, seen, _trackeval_data(gt_ids, tr_ids, sims), annotated, never,
                      unmasked_frames=unmasked)


def _trackeval_data(gt_ids: list[list[int]], tr_ids: list[list[int]], sims: list[np.ndarray]) -> dict:
    """The per-sequence dict TrackEval's metrics take: ids renumbered 0..n-1, IoU similarity per frame."""
    gt_map = {o: i for i, o in enumerate(sorted({o for f in gt_ids for o in f}))}
    tr_map = {o: i for i, o in enumerate(sorted({o for f in tr_ids for o in f}))}
    return {
        "num_timesteps": len(gt_ids),
        "num_gt_ids": len(gt_map),
        "num_tracker_ids": len(tr_map),
        "num_gt_dets": sum(len(f) for f in gt_ids),
        "num_tracker_dets": sum(len(f) for f in tr_ids),
        "gt_ids": [np.array([gt_map[o] for o in f], dtype=int) for f in gt_ids],
        "tracker_ids": [np.array([tr_map[o] for o in f], dtype=int) for f in tr_ids],
        "similarity_scores": [s.reshape(len(g), len(t)) for s, g, t in zip(sims, gt_ids, tr_ids)],
    }


@dataclass(frozen=True)
class EvalSet:
    """A moving-camera set: which evaluation folders, which class, how many clips of what kind."""

    name: str
    folders: tuple[str, ...]
    object_class: ObjectClass
    clips: int = 8
    frames: int = 60
    size: tuple[int, int] = (640, 360)
    seed: int = 7
    photos: tuple[str, ...] = ()  # these photos (ClipSpec names), in this order, instead of a random pick


# Photos whose labelled faces the photo plan finds and the light frame plan misses in a 1280x720 frame
# (tools/find_deep_only.py): grey group photos. Without the keyframe deep pass a face stays unmasked throughout.
DEEP_ONLY_PHOTOS = ("cmu_mit_faces-2", "cmu_mit_faces-5", "cmu_mit_faces-9", "cmu_mit_faces-27")

DEFAULT_SETS = (
    EvalSet("faces", FACE_SETS, ObjectClass.FACE),
    EvalSet("plates", PLATE_SETS, ObjectClass.LICENSE_PLATE),
    EvalSet("deep", ("cmu_mit_faces",), ObjectClass.FACE, clips=len(DEEP_ONLY_PHOTOS), frames=90,
            size=(1280, 720), photos=DEEP_ONLY_PHOTOS),
)


def run_set(eval_set: EvalSet, shared_eval: Path, work: Path, params: Params, engine: Engine, *,
            motion: Motion = Motion(), log: Callable[[str], None] = lambda message: None,
            ) -> tuple[dict[str, Any], list[ClipResult]]:
    """Render the set's clips into ``work``, process each with ``process_video``, and score them."""
    from pipeline.video.process import companion_name, process_video  # the evaluation drives the real pipeline

    specs = [s for folder in eval_set.folders for s in load_specs(shared_eval / folder, (eval_set.object_class,))]
    if eval_set.photos:
        by_name = {s.name: s for s in specs}
        specs = [by_name[name] for name in eval_set.photos][: eval_set.clips]
    else:
        specs = pick_specs(specs, eval_set.clips, eval_set.seed)
    (work / "out").mkdir(parents=True, exist_ok=True)
    results = []
    for number, spec in enumerate(specs):
        clip = work / f"{spec.name}.mp4"
        truth = render_clip(spec, clip, size=eval_set.size, frames=eval_set.frames, seed=eval_set.seed + number, motion=motion)
        dst = work / "out" / clip.name
        started = time.perf_counter()
        report = process_video(clip, dst, params, engine, name=clip.name)
        seconds = time.perf_counter() - started
        result = score_clip(spec.name, truth, dst.with_name(companion_name(dst)), params.mask, (eval_set.object_class,))
        result.disposition, result.review_reasons = report.disposition, list(report.review_reasons)
        result.seconds = seconds
        results.append(result)
        log(f"{eval_set.name} {spec.name}: box-frames masked {result.masked_box_frames}/{result.box_frames} "
            f"({result.recall:.4%}), longest unmasked run per object {sorted(result.longest_unmasked_run.values(), reverse=True)}, "
            f"never masked {result.never_masked}, {report.disposition}, {seconds:.1f}s"
            + "".join(f"\n  object {o} unmasked on frames {frame_ranges(f)}" for o, f in result.unmasked_frames.items()))
    return summarise(results), results
