"""Video benchmark: Veil's frames/s at 720p and 1080p against deface 1.5.0 and the transcode floor, same run,
per clip and per stage, with the quality outside the masks next to the speed.

    .venv/bin/python bench/video.py [--quick] [--frames 60] [--sizes 720p,1080p] [--deface ort|plain] [--4k]
                                    [--face-photo SET:INDEX] [--plate-photo SET:INDEX] [--mixed-photo SET:INDEX]
                                    [--crowd-photos SET:COUNT]
                                    [--set video.detect_stride=3[,KEY=VALUE...]] [--params FILE.toml]

1. Clips, per size (1280x720, 1920x1080; 30 fps H.264), rendered with the moving-camera evaluation
   (pipeline/eval/video.py render_clip: pan, zoom, roll, shake, shutter blur; exact per-frame ground truth):
   one from a labelled face photo (rbnr_faces), one from a labelled plate photo (openalpr_endtoend), a
   mixed one with faces and a plate on screen together: a plate photo (openalpr_endtoend) with real faces
   (rbnr_faces / dlib_faces_voc) feathered in by pipeline/eval/mixed_scenes.py, ground truth for both classes;
   and a crowd: the three cmu_mit_faces group photos with the most labelled faces side by side (bench/crowd.py,
   56 faces, about 50 in view per frame at 1080p); plus a one-frame clip for start-up. Cached under
   bench/.work/video/clips/.
2. Every variant runs as a child process on each clip on its own, and once per size on the one-frame clip;
   the parent reaps it with os.wait4 (wall, CPU s, peak RSS). Start-up (interpreter, imports, model load,
   first inference) is subtracted the same way for all: steady fps = (frames - 1) / (t(clip) - t(one frame)),
   per clip, and over all clips of a size the sum of both sides.
   - veil faces+plates, the headline: ``process_video`` with default ``Params()``, which is the shipped
     profile (config/veil.toml [profiles.default], checked at start): both classes, no override;
   - veil faces only (comparison): ``DetectorParams(classes=("face",))``, like for like with deface;
   - extra Veil variants from ``--set`` / ``--params`` (each over the defaults; full runs add stride 1 with every frame searched);
   - deface 1.5.0, its CLI with default settings (faces only), in its own venv (bench/anchor.py);
   - floor: ``pipeline.media.video.transcode`` with an identity stage: the same PyAV decode, RGB frames and
     libx264 encode at ``VideoParams()``'s preset/crf/pix_fmt, without detection or masking.
   Veil's children record its stage clock (the report's video.stage_seconds: decode, detect, mask, encode, ...)
   per clip in stages.json, the floor's child the transcode's (decode, encode): the per-stage table.
3. Quality: PSNR of each output against its input clip (both decoded to RGB by PyAV), the squared error summed
   over all frames, over the pixels outside the tool's masks (Veil: its boxes companion through
   ``coverage``; deface: its exact masks, below); the floor masks nothing, so over every pixel.
4. Mask recall per clip on the clips' ground truth: a ground-truth box counts as masked on a frame when >= 90%
   of its pixels are masked (pipeline.eval.video.COVERED). Veil: from its boxes companion by ``score_clip``.
   deface: bench/deface_regions.py re-runs deface's own reader, detector and ellipse on every frame in its
   venv (untimed), and the masks are scored by the same loop (cross-checked against ``score_clip`` on Veil).
   deface masks faces only: its plate recall is "-", like a Veil variant that does not search for plates.

It asserts nothing; other load on the machine moves absolute numbers, so read the ratios of one run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import av
import numpy as np

from pipeline.eval.video import COVERED, ClipSpec, GroundTruth, Motion, load_specs, render_clip, score_clip
from pipeline.mask import coverage, pixel_bounds
from pipeline.params import DetectorParams, Params, VideoParams
from pipeline.records import MaskRegion, ObjectClass
from pipeline.video.qc import read_boxes

import anchor  # bench/ is a folder of scripts, not a package
import crowd
from video_report import (
    FLOOR,
    Quality,
    Recall,
    Row,
    Timing,
    print_header,
    print_quality_note,
    print_ratios,
    print_recall,
    print_row,
    print_stages,
    share,
    total,
)

EVAL_ROOT = REPO / ".." / "shared" / "eval"
WORK = anchor.WORK / "video"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
SIZE_4K = (3840, 2160)
# clip kind: (evaluation set, index among its photos that pass the filter, minimum objects in the photo)
PHOTOS = {
    "face": ("rbnr_faces", 7, 2),  # rbnr_faces-161: four faces of 26-31 px in a 1024x768 photo
    "plate": ("openalpr_endtoend", 0, 1),  # openalpr_endtoend-1: a 1280x720 car, one plate of 162x52 px
    # The mixed clip: a plate photo (index among the set's photos with >= 1 labelled plate) with real faces
    # feathered in by pipeline/eval/mixed_scenes.py (scene_for, seed MIXED_SEED): openalpr_endtoend-1, the plate
    # clip's photo, plus three faces of 56-84 px (the scene of tests/integration/test_mixed_video.py).
    "mixed": ("openalpr_endtoend", 0, 1),
}
CLASSES = {"face": (ObjectClass.FACE,), "plate": (ObjectClass.LICENSE_PLATE,),
           "mixed": (ObjectClass.FACE, ObjectClass.LICENSE_PLATE), "crowd": (ObjectClass.FACE,)}
KINDS = (*PHOTOS, "crowd")
MIXED_SEED = 0  # mixed_scenes' seed: which faces, their size and place
SEED = 3
MOTION = Motion(crf=20)  # a little cleaner than the evaluation's default, closer to camera footage
RSS_BOUND_BYTES = 1.5e9  # issue 6: peak RSS per worker on 4K video
DEFACE_REGIONS = Path(__file__).resolve().parent / "deface_regions.py"
STAGES = "stages.json"  # written by each child in its out folder: per clip, seconds per stage


@dataclass
class CrowdPhotos:
    """The crowd clip's source: the ``photos`` photos of ``set_name`` with the most labelled faces."""

    set_name: str = crowd.CROWD_SET
    photos: int = crowd.PHOTOS


CROWD = CrowdPhotos()  # set by --crowd-photos


@dataclass(frozen=True)
class Clip:
    path: Path
    truth: Path  # GroundTruth JSON
    kind: str  # "face", "plate", "mixed" or "crowd"
    frames: int

    @property
    def classes(self) -> tuple[ObjectClass, ...]:
        """The classes its ground truth labels (every object of those classes in view is in it)."""
        return CLASSES[self.kind]


@dataclass(frozen=True)
class SizeClips:
    label: str
    clips: tuple[Clip, ...]
    single: Path  # one frame, for start-up

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.clips)


# ---- clips -------------------------------------------------------------------------------------------


_MIXED_SPECS: dict[tuple[str, int, int], ClipSpec] = {}


def mixed_spec(set_name: str, index: int, seed: int = MIXED_SEED) -> ClipSpec:
    """The mixed scene as a clip spec: photo ``index`` of ``set_name``'s photos with a labelled plate, with
    1-3 real faces feathered in by pipeline/eval/mixed_scenes.py; exact boxes for the plate(s) and the faces.
    The scene is written once per run as a PNG named after a digest of its pixels and boxes, so a change in
    mixed_scenes renders new clips instead of reusing cached ones."""
    key = (set_name, index, seed)
    if key not in _MIXED_SPECS:
        from pipeline.eval.mixed_scenes import plate_photos, scene_clip_spec, scene_for

        photos = plate_photos(EVAL_ROOT, (set_name,))
        if not 0 <= index < len(photos):
            raise SystemExit(f"--mixed-photo {set_name}:{index}: the set has {len(photos)} photos with a labelled plate")
        scene = scene_for(EVAL_ROOT, set_name, photos[index].image_id, seed=seed)
        if scene is None:
            raise SystemExit(f"--mixed-photo {set_name}:{index}: no face fits beside the plate; choose another photo")
        digest = hashlib.sha256(scene.image.tobytes() + scene.boxes.astype(np.float64).tobytes()
                                + scene.classes.astype(np.int64).tobytes()).hexdigest()[:8]
        folder = WORK / "scenes"
        folder.mkdir(parents=True, exist_ok=True)
        spec = scene_clip_spec(scene, folder / f"mixed-{scene.name}-s{seed}-{digest}.png")
        _MIXED_SPECS[key] = replace(spec, name=f"mixed-{scene.name}-s{seed}-{digest}")
    return _MIXED_SPECS[key]


def describe_mixed(spec: ClipSpec) -> str:
    sides = [f"{spec.boxes[i, 2] - spec.boxes[i, 0]:.0f}x{spec.boxes[i, 3] - spec.boxes[i, 1]:.0f}" for i in range(len(spec.boxes))]
    faces = [s for s, c in zip(sides, spec.classes) if c == int(ObjectClass.FACE)]
    plates = [s for s, c in zip(sides, spec.classes) if c == int(ObjectClass.LICENSE_PLATE)]
    return f"{spec.name}: {len(plates)} plate(s) {', '.join(plates)} px and {len(faces)} pasted face(s) {', '.join(faces)} px"


def crowd_spec() -> ClipSpec:
    return crowd.crowd_spec(EVAL_ROOT, WORK / "scenes", CROWD.set_name, CROWD.photos)


def _render(kind: str, size: tuple[int, int], frames: int, folder: Path) -> Clip:
    set_name, index, min_objects = PHOTOS.get(kind, ("", 0, 0))  # set by --face-photo / --plate-photo / --mixed-photo
    if kind == "crowd":
        spec = crowd_spec()
    elif kind == "mixed":
        spec = mixed_spec(set_name, index)
    else:
        specs = [s for s in load_specs(EVAL_ROOT / set_name, CLASSES[kind]) if len(s.boxes) >= min_objects]
        spec = specs[index]
    clip = folder / f"{spec.name}-{frames}.mp4"
    truth = clip.with_suffix(".truth.json")
    if not (clip.exists() and truth.exists()):
        render_clip(spec, clip, size=size, frames=frames, seed=SEED, motion=MOTION).save(truth)
    return Clip(clip, truth, kind, frames)


def make_clips(sizes: dict[str, tuple[int, int]], frames: int, kinds: tuple[str, ...] = KINDS) -> list[SizeClips]:
    result = []
    for label, size in sizes.items():
        folder = WORK / "clips" / label
        folder.mkdir(parents=True, exist_ok=True)
        clips = tuple(_render(k, size, frames, folder) for k in kinds)
        single = _render(kinds[0], size, 1, folder).path
        result.append(SizeClips(label, clips, single))
    return result


def in_view(clip: Clip) -> str:
    """``clip``'s ground truth in a few words: objects in view per frame, mean (min-max); for the mixed clip,
    also the frames on which a face and a plate are both in view."""
    frames = GroundTruth.load(clip.truth).frames
    counts = [len(f["ids"]) for f in frames]
    text = f"{np.mean(counts):.1f} ({min(counts)}-{max(counts)}) objects/frame"
    if clip.kind == "mixed":
        wanted = {int(ObjectClass.FACE), int(ObjectClass.LICENSE_PLATE)}
        text += f", both classes on {sum(1 for f in frames if wanted <= set(f['classes']))}/{len(frames)} frames"
    return text


# ---- child processes ---------------------------------------------------------------------------------


def measured(command: list[str], **kwargs) -> Timing:
    """Run ``command`` to completion; wall time, CPU time of its process tree, and its largest peak RSS (os.wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    stderr = proc.stderr.read()  # drained while it runs, so a chatty child cannot block on a full pipe
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} ... failed ({proc.returncode}):\n{stderr.decode(errors='replace')[-3000:]}")
    return Timing(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def run_child(kind: str, params: Params, clips: list[Path], out: Path) -> Timing:
    """This script in ``_child`` mode: Veil (``kind`` "veil") or the floor ("transcode") on ``clips``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    job = out / "job.json"
    job.write_text(json.dumps({"kind": kind, "params": params.model_dump(mode="json"),
                               "clips": [str(c) for c in clips], "out": str(out)}))
    return measured([sys.executable, str(Path(__file__).resolve()), "_child", str(job)])


def child_main(job_file: Path) -> int:
    """The measured process: imports and model load count as start-up, as in ``veil process``."""
    job = json.loads(job_file.read_text())
    params = Params.model_validate(job["params"])
    out = Path(job["out"])
    stages: dict[str, dict[str, float]] = {}  # per clip, busy seconds per stage (written after the timed work)
    if job["kind"] == "transcode":
        from pipeline.media.video import probe_video, transcode
        from pipeline.timing import StageClock

        for clip in map(Path, job["clips"]):
            clock = StageClock()
            transcode(clip, out / clip.name, probe_video(clip), params.video, lambda f: [] if f is None else [f],
                      clock=clock)
            stages[clip.name] = clock.seconds()
    else:
        from pipeline.detect.engine import Engine
        from pipeline.detect.runtime import RuntimeParams
        from pipeline.video.process import process_video

        engine = Engine.load(params.detector, RuntimeParams())
        for clip in map(Path, job["clips"]):
            report = process_video(clip, out / clip.name, params, engine, name=clip.name)
            if report.disposition == "failed":
                print(f"{clip}: {report.error}", file=sys.stderr)
                return 1
            stages[clip.name] = (report.video or {}).get("stage_seconds", {})
    (out / STAGES).write_text(json.dumps(stages))
    return 0


def read_stages(out: Path, clip: Path) -> dict[str, float]:
    """The busy seconds per stage that the child in ``out`` recorded for ``clip``."""
    return json.loads((out / STAGES).read_text()).get(clip.name, {})


def run_deface(deface: anchor.Deface, clips: list[Path], out: Path) -> Timing:
    """deface's CLI, default settings, on links to ``clips`` (it writes NAME_anonymized.mp4 beside each)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    links = []
    for clip in clips:
        (out / clip.name).symlink_to(clip.resolve())
        links.append(str(out / clip.name))
    timing = measured([str(deface.executable), *links])
    missing = [link for link in links if not anchor.output_for(Path(link)).exists()]
    if missing:  # deface skips a file it cannot open with a message and exit status 0
        raise SystemExit(f"deface wrote no output for {', '.join(missing)}")
    return timing


# ---- recall ------------------------------------------------------------------------------------------


def score_masks(truth: GroundTruth, masks, object_class: ObjectClass) -> tuple[int, int, int]:
    """(masked box-frames, box-frames, longest unmasked run) from per-frame boolean masks; the same rule
    as pipeline.eval.video.score_clip (>= COVERED of a box's pixels; a run ends when the object leaves the view)."""
    masked = total = longest = 0
    runs: dict[int, int] = {}
    frames = 0
    for gt, covered in zip(truth.frames, masks):
        frames += 1
        present = set()
        for object_id, cls, box in zip(gt["ids"], gt["classes"], gt["boxes"]):
            if cls != int(object_class):
                continue
            present.add(object_id)
            x0, y0, x1, y1 = pixel_bounds(box, covered.shape)
            share = covered[y0:y1, x0:x1].mean() if x1 > x0 and y1 > y0 else 1.0
            total += 1
            if share >= COVERED:
                masked += 1
                runs[object_id] = 0
            else:
                runs[object_id] = runs.get(object_id, 0) + 1
            longest = max(longest, runs[object_id])
        for object_id in [o for o in runs if o not in present]:
            runs[object_id] = 0
    if frames != len(truth.frames):
        raise SystemExit(f"{frames} masked frames for {len(truth.frames)} frames of ground truth")
    return masked, total, longest


def veil_coverage(boxes_file: Path, params: Params):
    records = read_boxes(boxes_file)
    header = next(records)
    shape = (header["height"], header["width"])
    for record in records:
        regions = [MaskRegion(tuple(r[:4]), ObjectClass(r[4]), r[5], r[7]) for r in record["mask"]]
        yield coverage(shape, regions, params.mask)


def veil_recall(clip: Clip, out: Path, params: Params) -> Recall:
    """Each class of ``clip``'s ground truth that ``params`` searches for, scored on its own by score_clip
    (and again by score_masks, which must agree); a class the variant does not search for is None."""
    from pipeline.video.process import companion_name

    found: dict[ObjectClass, tuple[int, int]] = {}
    longest = 0
    output = out / clip.path.name
    boxes = output.with_name(companion_name(output))
    truth = GroundTruth.load(clip.truth)
    for object_class in clip.classes:
        if object_class.label not in params.detector.classes:
            continue
        result = score_clip(clip.path.stem, truth, boxes, params.mask, (object_class,))
        again = score_masks(truth, veil_coverage(boxes, params), object_class)
        if again[:2] != (result.masked_box_frames, result.box_frames):
            raise SystemExit(f"score_masks {again[:2]} disagrees with score_clip "
                             f"{(result.masked_box_frames, result.box_frames)} on {clip.path.name} ({object_class.label})")
        found[object_class] = (result.masked_box_frames, result.box_frames)
        longest = max(longest, max(result.longest_unmasked_run.values(), default=0))
    return Recall(found.get(ObjectClass.FACE), found.get(ObjectClass.LICENSE_PLATE), longest)


def deface_masks(deface: anchor.Deface, clip: Clip, out: Path) -> Path:
    """deface's exact masks on every frame of ``clip`` (its own code, re-run in its venv, untimed): an npz of
    bits packed along the rows (bench/deface_regions.py)."""
    masks_file = out / f"{clip.path.stem}.deface-masks.npz"
    if not masks_file.exists():
        subprocess.run([str(deface.venv / "bin" / "python"), str(DEFACE_REGIONS), "--video", str(clip.path), str(masks_file)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return masks_file


def unpacked(masks_file: Path):
    """The per-frame boolean masks of a deface masks file."""
    data = np.load(masks_file)
    width = int(data["shape"][2])
    return (np.unpackbits(m, axis=-1, count=width).astype(bool) for m in data["masks"])


def deface_recall(clip: Clip, masks_file: Path) -> Recall:
    """deface's masks scored on ``clip``'s faces; deface masks no plates, so its plate recall is None ("-")."""
    if ObjectClass.FACE not in clip.classes:
        return Recall(None, None, 0)
    masked, box_frames, longest = score_masks(GroundTruth.load(clip.truth), unpacked(masks_file), ObjectClass.FACE)
    return Recall((masked, box_frames), None, longest)


# ---- quality -----------------------------------------------------------------------------------------


def rgb_frames(path: Path):
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def quality(source: Path, output: Path, masks=None) -> Quality | str:
    """Squared error of ``output`` against ``source`` over every frame, on the pixels outside ``masks`` (per-frame
    boolean maps; None: every pixel); where the two differ in frame count or size, why it was not measured."""
    sse, count, frames = 0, 0, 0
    masks = iter(masks) if masks is not None else None
    for ours, theirs in zip_longest(rgb_frames(source), rgb_frames(output)):
        if ours is None or theirs is None:
            return f"the output has {'more' if ours is None else 'fewer'} frames than the input ({frames} compared)"
        if ours.shape != theirs.shape:
            return (f"output frames of {theirs.shape[1]}x{theirs.shape[0]} px against the input's "
                    f"{ours.shape[1]}x{ours.shape[0]}")
        frames += 1
        error = np.square(ours.astype(np.int32) - theirs).sum(axis=2)
        keep = ~next(masks) if masks is not None else np.ones(error.shape, dtype=bool)
        sse += int(error[keep].sum())
        count += 3 * int(keep.sum())
    return Quality(float(sse), count) if count else "no pixel outside the masks"


def veil_quality(clip: Clip, out: Path, params: Params) -> Quality | str:
    from pipeline.video.process import companion_name

    output = out / clip.path.name
    return quality(clip.path, output, veil_coverage(output.with_name(companion_name(output)), params))


# ---- variants ----------------------------------------------------------------------------------------


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word: a string setting such as video.preset=veryfast


def overridden(base: Params, overrides: dict) -> Params:
    """``base`` with nested ``overrides`` merged in, validated as the service validates a profile."""
    def merge(into: dict, new: dict) -> dict:
        for key, value in new.items():
            into[key] = merge(dict(into[key]), value) if isinstance(value, dict) and isinstance(into.get(key), dict) else value
        return into

    return Params.model_validate(merge(base.model_dump(), overrides))


def parse_set(text: str) -> dict:
    """"video.detect_stride=3,detector.classes=[\"face\"]" -> {"video": {"detect_stride": 3}, ...}."""
    overrides: dict = {}
    for item in filter(None, (part.strip() for part in re.split(r",(?![^\[]*\])", text))):  # not inside [...]
        key, _, value = item.partition("=")
        *parents, leaf = key.strip().split(".")
        node = overrides
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = _value(value.strip())
    return overrides


HEADLINE = "veil faces+plates"
FACES_ONLY = "veil faces only (comparison)"


def shipped_profile() -> str:
    """Check that the headline variant is what ships: ``Params()`` equals config/veil.toml's default profile
    (the one every folder uses unless it names another) and searches for both classes."""
    params = Params()
    if set(params.detector.classes) != {"face", "license_plate"}:
        raise SystemExit(f"Params() searches for {params.detector.classes}, not faces and plates")
    try:
        from daemon.config.settings import DEFAULT_PROFILE, load_settings

        shipped = load_settings(REPO / "config" / "veil.toml").profiles[DEFAULT_PROFILE]
    except Exception as error:  # noqa: BLE001 - reported, the benchmark still runs Params()
        return f"Params() (config/veil.toml not compared: {error})"
    if shipped != params:
        raise SystemExit("config/veil.toml's default profile differs from Params(): the headline would not be what ships")
    return "Params() = config/veil.toml [profiles.default], classes face+license_plate, no override"


def variants(args: argparse.Namespace) -> dict[str, Params]:
    chosen = {
        HEADLINE: Params(),  # the shipped defaults: both classes, nothing narrowed or overridden
        FACES_ONLY: Params(detector=DetectorParams(classes=("face",))),  # like for like with deface, not the headline
    }
    if not args.quick:
        # The cost of the detection schedule: every frame searched for everything, no re-detection.
        chosen["veil f+p stride 1"] = Params(video=VideoParams(detect_stride=1, plate_every=1, roi_redetect=False))
    for text in args.set:
        chosen[f"veil {text}"] = overridden(Params(), parse_set(text))
    for path in args.params:
        with open(path, "rb") as handle:
            chosen[f"veil {Path(path).name}"] = overridden(Params(), tomllib.load(handle))
    return chosen


# ---- runs ------------------------------------------------------------------------------------------


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    recalls: dict[tuple[str, str, str], Recall] = field(default_factory=dict)  # (size, clip, variant)

    def add(self, row: Row, recall: Recall | None = None) -> None:
        self.rows.append(row)
        print_row(row)
        if recall is not None:
            self.recalls[row.size, row.clip, row.variant] = recall

    def summarize(self, size: str, variant: str) -> None:
        """A line for ``variant`` on all clips of ``size``: the sums of its per-clip runs."""
        self.add(total([r for r in self.rows if (r.size, r.variant) == (size, variant)]))


def folder_name(variant: str) -> str:
    return variant.replace(" ", "_").replace("/", "_")


def measure_child(kind: str, variant: str, params: Params, size: SizeClips, folder: Path, results: Results) -> None:
    """Veil (``kind`` "veil") or the floor ("transcode"): a child per clip, then one on the one-frame clip."""
    timings = {clip.kind: run_child(kind, params, [clip.path], folder / clip.kind) for clip in size.clips}
    single = run_child(kind, params, [size.single], folder / "single")
    single_stages = read_stages(folder / "single", size.single)
    for clip in size.clips:
        out = folder / clip.kind
        if kind == "veil":
            recall, measured_quality = veil_recall(clip, out, params), veil_quality(clip, out, params)
        else:  # the floor masks nothing: its quality over every pixel, no recall
            recall, measured_quality = None, quality(clip.path, out / clip.path.name)
        row = Row(size.label, clip.kind, variant, clip.frames, timings[clip.kind], single,
                  stages=read_stages(out, clip.path), single_stages=single_stages, quality=measured_quality)
        results.add(row, recall)
    results.summarize(size.label, variant)


def measure_deface(deface: anchor.Deface, variant: str, size: SizeClips, folder: Path, results: Results) -> None:
    """deface's CLI per clip and on the one-frame clip; then, untimed, its exact masks for recall and quality."""
    timings = {clip.kind: run_deface(deface, [clip.path], folder / clip.kind) for clip in size.clips}
    single = run_deface(deface, [size.single], folder / "single")
    for clip in size.clips:
        out = folder / clip.kind
        masks = deface_masks(deface, clip, out)
        measured_quality = quality(clip.path, anchor.output_for(out / clip.path.name), unpacked(masks))
        row = Row(size.label, clip.kind, variant, clip.frames, timings[clip.kind], single, quality=measured_quality)
        results.add(row, deface_recall(clip, masks))
    results.summarize(size.label, variant)


def measure_uhd(frames: int, runs: Path) -> None:
    """The headline on 3840x2160 face and mixed clips, in one child: its peak RSS against the issue's bound."""
    uhd = make_clips({"4K": SIZE_4K}, frames, kinds=("face", "mixed"))[0]
    params = Params()
    folder = runs / "4K" / folder_name(HEADLINE)
    whole = run_child("veil", params, [c.path for c in uhd.clips], folder)
    single = run_child("veil", params, [uhd.single], folder.with_name("single"))
    row = Row("4K", "face+mixed", HEADLINE, uhd.frames, whole, single)
    face = veil_recall(uhd.clips[0], folder, params)
    both = veil_recall(uhd.clips[1], folder, params)
    peak = max(whole.peak_rss_mb, single.peak_rss_mb)
    bound = "within" if peak * 2**20 < RSS_BOUND_BYTES else "OVER"

    def brief(found: tuple[int, int] | None) -> str:
        return " ".join(share(found).split())

    print(f"\n4K (3840x2160, face clip + mixed clip, {frames} frames each): {HEADLINE} {row.wall_fps:.2f} fps wall, "
          f"{row.steady_fps:.2f} steady, peak RSS {peak:.0f} MiB = {peak * 2**20 / 1e9:.2f} GB ({bound} the issue's 1.5 GB); "
          f"face recall {brief(face.face)} (face clip), mixed clip face {brief(both.face)} "
          f"plate {brief(both.plate)}, longest unmasked run {max(face.longest_run, both.longest_run)} frames")


# ---- report ------------------------------------------------------------------------------------------


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def revision() -> str:
    """The commit measured, and whether the working tree differed from it (others may be editing pipeline/)."""
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "pipeline"], capture_output=True, text=True).stdout.strip()
    if not commit:
        return f"{REPO} (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes in pipeline/" if dirty else "")


def print_setup(sizes: list[SizeClips], frames: int, deface: anchor.Deface, headline: str) -> None:
    video = VideoParams()
    print(f"clips per size: {', '.join(c.path.stem for c in sizes[0].clips) if sizes else '-'} "
          f"({frames} frames each, moving camera); "
          f"machine: {os.cpu_count()} cores, load {load()}")
    set_name, index, _ = PHOTOS["mixed"]
    print(f"mixed clip: {describe_mixed(mixed_spec(set_name, index))} (pipeline/eval/mixed_scenes.py, seed {MIXED_SEED})")
    faces = ", ".join(f"{s.label} {in_view(c)}" for s in sizes for c in s.clips if c.kind == "crowd")
    print(f"crowd clip: {crowd.describe(EVAL_ROOT, crowd_spec(), CROWD.set_name, CROWD.photos)} (bench/crowd.py); "
          f"faces in view: {faces or '-'}")
    print(f"headline {HEADLINE!r}: {headline}; {FACES_ONLY!r} narrows to faces, like for like with deface")
    print(f"veil: {revision()}; defaults video.detect_stride={video.detect_stride}, "
          f"face max_side={video.scales['face'].max_side}, plate tile_size={video.scales['license_plate'].tile_size}")
    print(f"deface: {deface.packages()}")
    print(f"floor: pipeline.media.video.transcode with an identity stage (PyAV decode, RGB, {video.codec} "
          f"preset={video.preset} crf={video.crf} pix_fmt={video.pix_fmt})")
    print("PSNR out dB: each output against its input clip, outside the tool's masks (the floor: every pixel)\n")


def by_clip(rows: list[Row]) -> list[Row]:
    """``rows`` grouped by size, then clip (in the order they first appear), each group in measuring order."""
    order = {key: n for n, key in enumerate(dict.fromkeys((r.size, r.clip) for r in rows))}
    return sorted(rows, key=lambda r: order[r.size, r.clip])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default 60; 20 with --quick)")
    parser.add_argument("--quick", action="store_true", help="20 frames (unless --frames), no stride-1 variant")
    parser.add_argument("--deface", choices=sorted(anchor.VARIANTS), default="ort",
                        help="deface variant: 'ort' (onnxruntime, as Veil) or 'plain' (OpenCV DNN)")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated, of 720p,1080p ('' with --4k: 4K only)")
    parser.add_argument("--4k", dest="uhd", action="store_true", help="also Veil faces+plates on 3840x2160 face and mixed clips (peak RSS)")
    parser.add_argument("--uhd-frames", type=int, default=10, help="frames of each 4K clip (default 10)")
    for kind, (set_name, index, least) in PHOTOS.items():
        label = "plate" if kind == "mixed" else kind
        what = " (faces pasted in by pipeline/eval/mixed_scenes.py)" if kind == "mixed" else ""
        parser.add_argument(f"--{kind}-photo", default=f"{set_name}:{index}", metavar="SET:INDEX",
                            help=f"the {kind} clip's photo{what}: an evaluation set and the index among its photos "
                                 f"with at least {least} labelled {label}(s) (default {set_name}:{index})")
    parser.add_argument("--crowd-photos", default=f"{CROWD.set_name}:{CROWD.photos}", metavar="SET:COUNT",
                        help="the crowd clip: that many photos of a face set, those with the most labelled faces, side "
                             f"by side (default {CROWD.set_name}:{CROWD.photos})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="an extra Veil variant: these Params overrides on the defaults (repeatable)")
    parser.add_argument("--params", action="append", default=[], metavar="FILE.toml",
                        help="an extra Veil variant: a Params table ([detector], [video], ...) over the defaults")
    args = parser.parse_args()
    for kind, choice in (("face", args.face_photo), ("plate", args.plate_photo), ("mixed", args.mixed_photo)):
        set_name, _, index = choice.rpartition(":")
        PHOTOS[kind] = (set_name, int(index), PHOTOS[kind][2])
    set_name, _, count = args.crowd_photos.rpartition(":")
    CROWD.set_name, CROWD.photos = set_name, int(count)
    return args


def main() -> int:
    if sys.argv[1:2] == ["_child"]:
        return child_main(Path(sys.argv[2]))
    args = parse_args()
    frames = args.frames if args.frames is not None else 20 if args.quick else 60
    if not (EVAL_ROOT / "README.md").exists():
        print(f"bench/video.py: needs the evaluation data at {EVAL_ROOT}", file=sys.stderr)
        return 2

    chosen = variants(args)
    headline = shipped_profile()
    deface = anchor.ensure_deface(args.deface)
    sizes = make_clips({k: v for k, v in SIZES.items() if k in args.sizes.split(",")}, frames)
    print_setup(sizes, frames, deface, headline)
    if sizes:
        print_header()

    results = Results()
    runs = WORK / "runs"
    deface_label = f"deface {anchor.DEFACE_VERSION} ({args.deface})"
    for size in sizes:
        for name, params in chosen.items():
            measure_child("veil", name, params, size, runs / size.label / folder_name(name), results)
        measure_deface(deface, deface_label, size, runs / size.label / "deface", results)
        measure_child("transcode", FLOOR, Params(), size, runs / size.label / "floor", results)

    if results.rows:
        print_quality_note(results.rows)
        rows = by_clip(results.rows)
        print_ratios(rows)
        print_stages(rows)
        print_recall(results.recalls, {(s.label, c.kind): in_view(c) for s in sizes for c in s.clips}, COVERED)

    if args.uhd:
        measure_uhd(args.uhd_frames, runs)
    print(f"\nload at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
