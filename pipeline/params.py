"""Typed processing parameters. They arrive from configuration and are recorded in every sidecar. Defaults
favour recall: a missed face is a privacy leak, an extra blurred patch is not."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from pipeline.detect.families import family_names
from pipeline.records import ObjectClass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassThresholds(_Strict):
    """From ``threshold`` up: confident. From ``review_floor`` up to it: the review band (``mask_review_band``)."""

    threshold: float = Field(ge=0.0, le=1.0)
    review_floor: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> "ClassThresholds":
        if self.review_floor > self.threshold:
            raise ValueError(f"review_floor {self.review_floor} is above threshold {self.threshold}")
        return self


def _registered_family(name: str) -> str:
    if name not in family_names():
        raise ValueError(f"unknown detector family {name!r} (known: {', '.join(family_names())})")
    return name


# A family registered in pipeline/detect (each family file registers its own name).
FamilyName = Annotated[str, AfterValidator(_registered_family)]


def _known_class(label: str) -> str:
    if label not in {c.label for c in ObjectClass}:
        raise ValueError(f"unknown class {label!r} (known: {', '.join(c.label for c in ObjectClass)})")
    return label


# A class Veil knows (an ObjectClass), by the label configuration and sidecars use.
ClassLabel = Annotated[str, AfterValidator(_known_class)]


class ModelSpec(_Strict):
    """One ONNX detector and its contract. ``family`` picks the pre/post-processing."""

    name: str
    family: FamilyName
    path: Path | None = None  # None: the default model file of that name in the model directory
    classes: tuple[ClassLabel, ...]
    input_size: int | None = Field(default=None, ge=32)  # fixed-input families (YOLO): square side
    sha256: str | None = None  # pin: a mismatch refuses to load
    # On the CPU, run in 8-bit integers with the calibration Veil ships for the file (pipeline/detect/int8.py);
    # a file without one refuses to load; ignored on a GPU. None: as the catalogue says for a default model
    # file, by name or pinned by checksum (both shipped files: docs/models.md#int8-on-the-cpu), else no.
    int8: bool | None = None


class ScalePlan(_Strict):
    """How an image is fed to a detector: whole-image passes at several scales, plus tiles.

    ``max_side``: a whole-image pass is capped at this many pixels on the long side.
    ``upscale_below``: images whose long side is under this also get a 2x pass for small objects.
    ``tile_above``: images whose long side is over this also get overlapping native-resolution tiles.
    """

    max_side: int = Field(ge=64)
    upscale_below: int = Field(ge=0)
    tile_above: int = Field(ge=64)
    tile_size: int = Field(ge=64)
    tile_overlap: float = Field(default=0.25, ge=0.0, lt=0.9)
    downscale: bool = False  # also a whole-image pass at half scale, for objects that fill the frame
    rotate_180: bool = False  # also the whole image upside down (faces on playing cards, scans put in wrongly)
    rotate_90: bool = False  # also the whole image turned a quarter each way (sideways, with no EXIF orientation)
    tilt_45: bool = False  # also the whole image tilted 45 degrees each way (heads tilted, a camera held askew)
    # Which of those two views: degrees counter-clockwise. A video's leaning shot narrows its light passes to
    # the way its faces lean (pipeline/video/keyframes.py); a site whose cameras all lean one way may too.
    tilt_sides: tuple[Literal[45, -45], ...] = Field(default=(45, -45), min_length=1)


class ClassSettings(ClassThresholds):
    """Everything about finding one class: its score bands, its model, and how images are fed to it."""

    model: ModelSpec
    scales: ScalePlan


# CenterFace finds faces down to about 10 px at their own size, half that at twice it: photos up to 1400 px (the
# plate plan's bound too) get the 2x view, for about 8% more time a photo there (docs/evaluation.md#distant-faces).
FACE_PLAN = ScalePlan(max_side=1920, upscale_below=1401, tile_above=2400, tile_size=1280, downscale=True, rotate_180=True,
                      rotate_90=True, tilt_45=True)
# platedet letterboxes to 640 (``max_side``; ``upscale_below`` means 2x tiles). It finds many small or foreign
# plates only at twice the size (openalpr_endtoend: 97.0% whole, 99.2% with 2x tiles): 1-2 MP photos get those too.
PLATE_PLAN = ScalePlan(max_side=640, upscale_below=1401, tile_above=1400, tile_size=960)

# The shipped settings of each class. A table in a file that leaves keys out keeps these for them.
DEFAULT_CLASSES: dict[str, ClassSettings] = {
    "face": ClassSettings(threshold=0.4, review_floor=0.2, scales=FACE_PLAN,
                          model=ModelSpec(name="centerface", family="centerface", classes=("face",))),
    "license_plate": ClassSettings(threshold=0.35, review_floor=0.15, scales=PLATE_PLAN,
                                   model=ModelSpec(name="platedet", family="yolov8", classes=("license_plate",),
                                                   input_size=640)),
}


def _table(value: Any) -> Any:
    """A configuration table as a new plain dict (a model given in code: its fields, one level)."""
    return dict(value) if isinstance(value, (dict, BaseModel)) else value


def _completed(table: Any, default: BaseModel | None) -> Any:
    """``table`` with the keys it leaves out taken from ``default`` (one level: a nested table replaces)."""
    table = _table(table)
    return {**dict(default), **table} if isinstance(table, dict) and default is not None else table


def _class_table(label: str, table: Any) -> Any:
    """A class's table completed from its shipped settings, its ``scales`` table from the shipped plan."""
    default = DEFAULT_CLASSES.get(label)
    table = _completed(table, default)
    if isinstance(table, dict) and default is not None:
        table["scales"] = _completed(table["scales"], default.scales)
    return table


# Keys from before per_class, each one setting of one class: (label, key in per_class.<label> or None: thresholds).
_OLD_DETECTOR_KEYS: dict[str, tuple[str, str | None]] = {
    "face": ("face", None), "license_plate": ("license_plate", None),
    "face_model": ("face", "model"), "plate_model": ("license_plate", "model"),
    "face_scales": ("face", "scales"), "plate_scales": ("license_plate", "scales")}


class DetectorParams(_Strict):
    classes: tuple[ClassLabel, ...] = ("face", "license_plate")  # the classes searched (each needs per_class)
    per_class: dict[ClassLabel, ClassSettings] = Field(default_factory=lambda: dict(DEFAULT_CLASSES))
    nms_iou: float = Field(default=0.4, gt=0.0, le=1.0)
    level_dark: bool = True  # underexposed pictures are levelled before detection (pipeline/detect/exposure.py)
    sharpen_blurred: bool = True  # out-of-focus or shaken pictures are sharpened for plates (pipeline/detect/focus.py)

    @model_validator(mode="before")
    @classmethod
    def _tables_by_class(cls, data: Any) -> Any:
        """Old keys moved into per_class, and every class's table completed from its shipped settings."""
        if not isinstance(data, dict) or not isinstance(data.get("per_class", {}), dict):
            return data
        data = dict(data)
        tables = {label: _table(t) for label, t in data.pop("per_class", {}).items()}
        for old, (label, key) in _OLD_DETECTOR_KEYS.items():
            if old not in data:
                continue
            moved = _table(data.pop(old)) if key is None else {key: data.pop(old)}
            table = tables.setdefault(label, {})
            if not isinstance(moved, dict) or not isinstance(table, dict):
                raise ValueError(f"{old} and per_class.{label} must be tables")
            if set(moved) & set(table):
                raise ValueError(f"{old} and per_class.{label} both set {', '.join(moved)}: keep per_class only")
            table.update(moved)
        data["per_class"] = {**DEFAULT_CLASSES, **{label: _class_table(label, t) for label, t in tables.items()}}
        return data

    @model_validator(mode="after")
    def _searched_classes_have_settings(self) -> "DetectorParams":
        missing = [label for label in self.classes if label not in self.per_class]
        if missing:
            raise ValueError(f"classes {missing} have no per_class table (model, threshold, review_floor, scales)")
        return self

    def for_class(self, object_class: ObjectClass) -> ClassSettings:
        return self.per_class[object_class.label]

    def thresholds(self, object_class: ObjectClass) -> ClassThresholds:
        return self.for_class(object_class)

    def with_model(self, object_class: ObjectClass, model: ModelSpec) -> "DetectorParams":
        """The same settings with ``model`` finding ``object_class``."""
        per_class = {**self.per_class, object_class.label: self.for_class(object_class).model_copy(update={"model": model})}
        return self.model_copy(update={"per_class": per_class})


class MaskParams(_Strict):
    """How regions are masked. Strength is relative to the region, so large faces get as much as small."""

    style: Literal["blur", "mosaic", "solid"] = "blur"
    shape: Literal["box", "ellipse"] = "box"
    margin: float = Field(default=0.2, ge=0.0, le=2.0)  # plates: grown on each side, share of width/height
    face_margin: float = Field(default=0.25, ge=0.0, le=2.0)  # faces: the same, after squaring
    # Face detectors box the inner face; hair, ears and forehead identify too. A face region is first made
    # square on its longer side, then grown by face_margin.
    square_faces: bool = True
    mask_review_band: bool = True
    blur_cells: int = Field(default=6, ge=2, le=64)  # detail left across the region's long side, at most
    mosaic_cells: int = Field(default=8, ge=2, le=64)  # mosaic cells across the region's long side
    solid_color: tuple[int, int, int] = (0, 0, 0)


class OutputParams(_Strict):
    jpeg_quality: int = Field(default=95, ge=1, le=100)
    webp_quality: int = Field(default=95, ge=1, le=100)
    heif_quality: int = Field(default=90, ge=1, le=100)  # HEIC/HEIF (x265) and AVIF outputs
    max_pixels: int = Field(default=150_000_000, ge=1)  # refuse larger images: decompression bombs


class TrackerParams(_Strict):
    """ByteTrack-style association. Scores are split per class by that class's threshold (high) and
    review floor (low); high-score detections start tracks, and review-band ones touching the frame's edge
    where the profile masks the review band (``pipeline.video.plan.score_bands``)."""

    match_iou: float = Field(default=0.2, gt=0.0, le=1.0)  # first stage: high-score detections vs tracks
    low_match_iou: float = Field(default=0.4, gt=0.0, le=1.0)  # second stage: low-score detections
    # Fast motion: high-score detections left over after IoU matching may still join a track whose predicted
    # centre is within this many box sizes (times the square root of the frames since its last match), if
    # the track was found on its class's last search (a lost one is re-found by overlap only).
    centre_gate: float = Field(default=1.5, ge=0.0, le=10.0)
    lost_frames: int = Field(default=30, ge=0, le=600)  # a lost track is kept (and can be re-found) this long
    # A track last seen touching the frame's edge is leaving, or half out of view, where no detector finds a
    # cut face: it is kept, and masked on its prediction, this long instead, while that prediction is still
    # in the frame (an object leaving is masked until it is gone).
    edge_lost_frames: int = Field(default=60, ge=0, le=600)
    # A settled track (TrackObservation.settled: no re-detection window between searches) also moves on its
    # own, relative to the camera's motion, by at most this share of its size per frame: over a detection
    # stride of 3 that is within the track margin (0.1), where interpolating between searches holds. Faster
    # objects (a face swinging across the picture: 0.075 at the median) are looked for on every frame.
    settled_speed: float = Field(default=0.03, ge=0.0, le=1.0)


# Frames get lighter detector plans than photos: neighbouring frames and the tracker cover much of what extra passes
# would find, and upside-down, turned, tilted or 2x-tiled passes would multiply the cost of every frame. Plates: the
# whole frame, plus tiles as tall as a 1080p frame (two cover 1920x1080 at 0.59 scale; 960 px tiles took six at 0.67).
UPRIGHT_ONLY = {"rotate_90": False, "tilt_45": False}  # a plan's update that leaves out its turned and tilted views
VIDEO_PLANS: dict[str, ScalePlan] = {
    # Frames up to 1024 px only get the 2x view: on a 720p frame it would cost four frame passes.
    "face": FACE_PLAN.model_copy(update={"upscale_below": 1024, "downscale": False, "rotate_180": False, **UPRIGHT_ONLY}),
    "license_plate": PLATE_PLAN.model_copy(update={"upscale_below": 0, "tile_size": 1080, "tile_overlap": 0.2}),
}


class VideoParams(_Strict):
    """Video encoding and the temporal mask plan. Frame counts are in frames of the input."""

    codec: Literal["h264", "hevc", "mpeg4"] = "h264"
    crf: int = Field(default=18, ge=0, le=51)  # constant quality (x264/x265); ignored when bitrate is set
    bitrate: int | None = Field(default=None, ge=10_000)  # bits/s; replaces crf
    # veryfast: half medium's encoding time for the same file size at CRF 18, 0.7 dB less luma PSNR (44.8 dB
    # against a camera-like 1080p input, bench/video.py's PSNR column); x264 threads itself to every core.
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"] = "veryfast"
    pix_fmt: Literal["yuv420p", "yuv444p"] = "yuv420p"
    # Every audio stream copied packet for packet ("keep"), or none ("drop": voices and what they say identify
    # people too; the sidecar lists the streams under dropped_streams).
    audio: Literal["keep", "drop"] = "keep"
    # Detect on every k-th frame; tracks (interpolated between detections) and re-detection cover the others.
    # 3 is a third of the detector's cost with no leak on the moving-camera evaluation (docs/video.md).
    detect_stride: int = Field(default=3, ge=1, le=30)
    # On the frames the stride skips, re-detect faces in a window around every track (the face detector takes
    # any input size, so a crop costs a fraction of a frame). The finds are masked on top of the tracks' boxes.
    roi_redetect: bool = True
    # The window: the box grown this many box sizes on each side (a track's predicted box is a frame or two
    # old; a miss costs only the extra cover, the track's own box is masked anyway).
    roi_context: float = Field(default=0.5, ge=0.25, le=4.0)
    # Re-detect around every track (true), or only around the tracks not yet settled (false): a track found
    # at a confident score on its class's last search, and on one before, away from the frame's edge, is
    # placed between searches by the look-ahead's interpolation; new, weak, lost and edge tracks are looked for.
    roi_every_track: bool = False
    # Plates are searched on every k-th detected frame only (every detect_stride * plate_every frames): the plate
    # model is the dearest pass and a plate moves smoothly with its car; tracks interpolate between.
    plate_every: int = Field(default=2, ge=1, le=30)
    # Between plate searches, plates are re-detected around their tracks on every k-th frame (0: never). The
    # plate model's fixed 640 input makes each re-detection a whole pass, however many windows share its
    # canvas (about 0.4 s on 2 cores): on every frame it would cost three times the plate searches. 3: on the
    # detected frames between plate frames, so a plate track is confirmed every third frame.
    plate_roi_every: int = Field(default=3, ge=0, le=30)
    lookahead_frames: int = Field(default=30, ge=1, le=600)  # frames held back so the future can mask the past
    backfill_frames: int = Field(default=15, ge=0, le=600)  # mask a new track this far before its first hit
    lost_mask_frames: int = Field(default=30, ge=0, le=600)  # keep masking a lost track on its prediction
    temporal_dilation: int = Field(default=1, ge=0, le=10)  # a track's mask also covers its box this many frames away
    # A track's box is an estimate (interpolated, predicted, or a detection that jitters from frame to frame):
    # its mask gets this much more margin, as a share of the box size on each side, on top of mask.margin.
    track_margin: float = Field(default=0.1, ge=0.0, le=1.0)
    # An object cut by the frame's edge is found from its visible part: the detector's box shrinks as the
    # object leaves (a head half out of the picture measured half its width), so a box touching the edge
    # gets this much more margin, share of the box on each side, on top of the others.
    edge_margin: float = Field(default=0.15, ge=0.0, le=1.0)
    camera_motion: bool = True  # compensate camera motion (optical flow) in track predictions and back-fills
    # The deep pass (pipeline/video/keyframes.py): the photo plan (detector.per_class scales), every class, on
    # one frame per this many seconds of media time (0: off) and on the first frame after a scene cut. What
    # it finds seeds tracks; the back-fill, the lost-track masking and the look-ahead are stretched to cover
    # one interval, so a face only the photo plan finds stays masked from one keyframe to the next.
    keyframe_interval_s: float = Field(default=1.0, ge=0.0, le=60.0)
    keyframe_on_cuts: bool = True
    # The photo plan's 45-degree face views (tilt_45: a camera held askew leans every face) on keyframes: on a
    # scene's first, on each after one where they added a face or the camera rolled 20 degrees, and otherwise
    # on every this-many-th keyframe (1: every keyframe, a tenth more of a clip's time; 0: never).
    # pipeline/video/keyframes.py.
    tilted_keyframes_every: int = Field(default=5, ge=0, le=1000)
    # A file goes to review when those views saw faces the light plan's views did not, at both ends of a keyframe
    # interval: the shot leans, and leaning faces are found less surely. Off: noted in the sidecar, not routed.
    tilted_review: bool = True
    # A file goes to review when the light frame plan saw nothing, over a whole keyframe interval, of a class
    # the deep pass found at both ends (pipeline/video/keyframes.py, LightBlindness): only tracks masked the
    # frames between, so a short leak there cannot be ruled out. Off: such files are noted, not routed.
    light_blind_review: bool = True
    # With the deep pass on, the light plan follows the scene between keyframes (pipeline/video/light_plan.py):
    # the whole-frame face pass is scaled down (to 0.75 or 0.5) while every face known in the clip (its tracks)
    # stays at least face_min_px pixels there, and plates are searched on the whole frame without its tiles
    # unless a known plate is under plate_min_px wide in that letterboxed view. The keyframes' photo plan
    # finds what these miss, back-filled over one interval.
    scene_plans: bool = True
    face_min_px: int = Field(default=32, ge=1, le=1024)
    plate_min_px: int = Field(default=48, ge=1, le=1024)
    tracker: TrackerParams = TrackerParams()
    # Per class, the detector plan for frames (a class not listed gets its photo plan, detector.per_class).
    scales: dict[ClassLabel, ScalePlan] = Field(default_factory=lambda: dict(VIDEO_PLANS))

    @model_validator(mode="before")
    @classmethod
    def _plans_by_class(cls, data: Any) -> Any:
        """Old keys moved into ``scales``, and every class's table completed from its shipped frame plan."""
        if not isinstance(data, dict) or not isinstance(data.get("scales", {}), dict):
            return data
        if "light_miss_review" in data:  # a threshold of the review signal light_blind_review replaced
            raise ValueError("video.light_miss_review was replaced by video.light_blind_review (true or false): "
                             "see docs/video.md")
        data = dict(data)
        plans = {label: _completed(t, VIDEO_PLANS.get(label)) for label, t in data.pop("scales", {}).items()}
        for old, label in (("face_scales", "face"), ("plate_scales", "license_plate")):
            if old in data:
                if label in plans:
                    raise ValueError(f"{old} and scales.{label} both set: keep scales only")
                # A table under the old key was completed from the photo plan of its day (FaceScales, PlateScales:
                # neither turned nor tilted), not from the frame plan: kept, so that an old file means what it meant.
                plans[label] = _completed(data.pop(old), DEFAULT_CLASSES[label].scales.model_copy(update=UPRIGHT_ONLY))
        data["scales"] = {**VIDEO_PLANS, **plans}
        return data

    def frame_plans(self) -> dict[ObjectClass, ScalePlan]:
        """The frame plans by class, as ``Engine.detect`` takes them."""
        return {ObjectClass.from_label(label): plan for label, plan in self.scales.items()}

    def covering(self, frames: int) -> "VideoParams":
        """These settings with every temporal horizon at least ``frames`` long (one keyframe interval): the
        back-fill, the lost-track masking, the tracker's memory, and the look-ahead that holds them."""
        tracker = self.tracker.model_copy(update={"lost_frames": max(self.tracker.lost_frames, frames)})
        return self.model_copy(update={
            "backfill_frames": max(self.backfill_frames, frames), "lost_mask_frames": max(self.lost_mask_frames, frames),
            "lookahead_frames": max(self.lookahead_frames, frames), "tracker": tracker,
        })

    @property
    def plate_stride(self) -> int:
        return self.detect_stride * self.plate_every

    @model_validator(mode="after")
    def _lookahead_covers(self) -> "VideoParams":
        needed = max(self.backfill_frames, self.detect_stride, self.plate_stride, self.temporal_dilation)
        if self.lookahead_frames < needed:
            raise ValueError(f"lookahead_frames {self.lookahead_frames} must be >= {needed} "
                             f"(backfill, detect_stride x plate_every, dilation)")
        if self.plate_stride > self.tracker.lost_frames:
            raise ValueError(f"detect_stride x plate_every ({self.plate_stride}) must not exceed tracker.lost_frames "
                             f"({self.tracker.lost_frames}): plate tracks would be dropped between searches")
        return self


class ReviewParams(_Strict):
    """Which files go to review, and what a reviewer may change when re-rendering an item (``veil review``,
    the rework folder)."""

    # What sends a file to review/ (every finding is in the sidecar either way: review_reasons or review_notes):
    # - "leak-risk": only what a person could change, something that may still be unmasked (review-band
    #   detections left unmasked, damaged frames, a light frame plan that missed what the deep pass found, ...);
    #   masked review-band detections are noted, not routed. "strict": every uncertain finding, masked
    #   review-band detections too. "off": nothing; failures still go to failed/, spot-checks still sample.
    policy: Literal["leak-risk", "strict", "off"] = "leak-risk"

    # Photos: a plate-like region a second plate detector (pipeline/detect/cascade.py) finds unmasked is a leak risk.
    plate_cross_check: bool = True
    plate_cross_check_neighbors: int = Field(default=10, ge=1)  # 5% of files in review at most (docs/evaluation.md)
    # Photos searched for plates: one out of focus or shaken (pipeline/detect/focus.py) is a leak risk, sharpened too.
    out_of_focus: bool = True

    # A detection marked as a false positive is unmasked in the re-render only when this is on; either way
    # the mark is recorded in the audit trail. Off: a reviewer can add masks, never remove one.
    allow_false_positive_unmask: bool = False


class Params(_Strict):
    detector: DetectorParams = DetectorParams()
    mask: MaskParams = MaskParams()
    output: OutputParams = OutputParams()
    video: VideoParams = VideoParams()
    review: ReviewParams = ReviewParams()
