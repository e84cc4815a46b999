"""Process one video: decode, detect, track, plan, mask, encode, remux audio, and report.

Frames stream through a bounded look-ahead buffer (``params.video.lookahead_frames``): the memory held is
that many decoded frames, whatever the video's length. Frames above 1440p (4K: 25 MB each) are not held at
all: a first decoding pass detects and plans, a second decodes again to mask and encode. The output and its boxes companion are written
under temporary names beside ``dst`` and renamed only when complete; on any failure both are removed.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from pathlib import Path

import numpy as np

from pipeline.edits import EditCounts, Edits
from pipeline.detect.engine import Engine
from pipeline.errors import ProcessingError
from pipeline.features import VideoFeatures
from pipeline.mask import apply_masks, plan_regions, region_box
from pipeline.media.video import (
    ENCODER_BY_CODEC,
    LARGE_FRAME_PIXELS,
    DecodedFrame,
    VideoReader,
    timed_frames,
    VideoInfo,
    transcode,
    output_container,
    probe_video,
)
from pipeline.detect.catalogue import sha256_of
from pipeline.params import Params, ScalePlan, VideoParams
from pipeline.qc import FileInfo, QCReport
from pipeline.records import Detections, MaskRegion, ObjectClass
from pipeline.run import start_report
from pipeline.timing import StageClock
from pipeline.track.bytetrack import TrackObservation
from pipeline.track.motion import CameraMotion
from pipeline.video.plan import FramePlan, MaskPlanner, review_band_count
from pipeline.video.qc import BOXES_SUFFIX, MAX_LISTED, BoxesWriter, TrackSummary, VideoSummary, class_label

# MaskRegion.source for each way a track box came about.
_REGION_SOURCE = {"interpolated": "interpolated"}


def companion_name(dst: Path) -> str:
    return dst.name + BOXES_SUFFIX


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def frame_regions(plan: FramePlan, params: Params, shape: tuple[int, ...]) -> list[tuple[MaskRegion, int | None]]:
    """Every region to mask on this frame, each with the track it belongs to (None: a raw detection)."""
    regions: list[tuple[MaskRegion, int | None]] = [(r, None) for r in plan_regions(plan.detections, params, shape)]
    for track in plan.tracks:
        box = region_box(track.hull, ObjectClass(track.object_class), params.mask, shape, params.video.track_margin)
        if box[2] <= box[0] or box[3] <= box[1]:
            continue  # wholly outside the picture (a back-fill or prediction past the edge)
        source = _REGION_SOURCE.get(track.source, "track")
        regions.append((MaskRegion(box, ObjectClass(track.object_class), track.score, source), track.track_id))
    return regions


class _Run:
    """The state of one video's pass: counters for the QC summary."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.frames_written = 0
        self.frames_detected = 0
        self.untracked = 0
        self.gaps: list[int] = []
        self.review_frames: Counter[str] = Counter()
        self.masked_regions: Counter[str] = Counter()

    def account(self, plan: FramePlan, regions: list[tuple[MaskRegion, int | None]]) -> None:
        if plan.detected:
            self.frames_detected += 1
        if plan.detection_gap:
            self.gaps.append(plan.index)
        for label in review_band_count(plan, self.params.detector):
            self.review_frames[label] += 1
        if plan.detected:  # re-detections on skipped frames never join tracks: not counted as untracked
            raw = sum(1 for _, track_id in regions if track_id is None)
            matched = sum(1 for t in plan.tracks if t.source == "detection")  # each took one of the raw detections
            self.untracked += max(0, raw - matched)
        for region, _ in regions:
            self.masked_regions[region.object_class.label] += 1


def process_video(
    src: Path, dst: Path, params: Params, engine: Engine, *, name: str, edits: Edits | None = None
) -> QCReport:
    """Mask every frame of ``src`` into ``dst`` (same container), with a boxes companion beside it."""
    edits, edit_counts = edits or Edits(), EditCounts()
    info = probe_video(src)
    features = VideoFeatures.for_video(params, info.average_rate, info.codec, info.width, info.height)  # drift
    report = start_report(name, params, engine)
    report.input = FileInfo(name=name, media_type="video", format=info.container, width=info.width, height=info.height)
    boxes_path = dst.with_name(companion_name(dst))
    partial_video, partial_boxes = _partial(dst), _partial(boxes_path)
    try:
        summary = _transcode(src, partial_video, partial_boxes, info, output_container(dst), params, engine, features,
                             edits=edits, edit_counts=edit_counts)
        os.replace(partial_boxes, boxes_path)
        os.replace(partial_video, dst)
    except BaseException:
        for leftover in (partial_video, partial_boxes, boxes_path, dst):
            leftover.unlink(missing_ok=True)
        raise

    report.companions = [boxes_path.name]
    report.output = FileInfo(
        name=name, sha256=sha256_of(dst), size_bytes=dst.stat().st_size, media_type="video",
        format=summary.container, width=info.width, height=info.height,
    )
    report.video = summary.model_dump(mode="json", by_alias=True)
    report.features = features.result(report.video)  # drift statistics (pipeline/features.py)
    report.edits = edits.summary(edit_counts)
    report.counts = _track_counts(summary)
    report.review_reasons = _review_reasons(summary, params)
    report.disposition = "review" if report.review_reasons else "done"
    return report


def _transcode(
    src: Path, out: Path, boxes: Path, info: VideoInfo, container: str, params: Params, engine: Engine,
    features: VideoFeatures | None = None, *, edits: Edits = Edits(), edit_counts: EditCounts | None = None,
) -> VideoSummary:
    video_params = params.video
    frame_scales = {ObjectClass.FACE: video_params.face_scales, ObjectClass.LICENSE_PLATE: video_params.plate_scales}
    planner = MaskPlanner(video_params, params.detector)
    classes = frozenset(ObjectClass.from_label(label) for label in params.detector.classes)
    camera = CameraMotion() if video_params.camera_motion else None
    run = _Run(params)
    clock = StageClock()
    shape = (info.height, info.width, 3)  # upright frames
    boxes_writer = BoxesWriter(boxes, width=info.width, height=info.height, time_base=str(info.time_base),
                               rate=str(info.average_rate) if info.average_rate else None)

    def regions_of(plan: FramePlan, pts: int) -> list[MaskRegion]:
        """The frame's final regions, recorded in the companion and the counts."""
        regions = frame_regions(plan, params, shape)
        # Edits (pipeline/edits.py): suppressed regions leave the frame's masks, add polygons join them.
        regions = [(r, t) for r, t in regions if not edits.suppresses(r, shape, plan.index, edit_counts)]
        boxes_writer.frame(plan, pts, regions)
        run.account(plan, regions)
        return [r for r, _ in regions]

    def paint(frame: DecodedFrame, regions: list[MaskRegion]) -> DecodedFrame:
        with clock.measure("mask"):
            apply_masks(frame.rgb, regions, params.mask)
            edits.apply_adds(frame.rgb, frame.index, params.mask, edit_counts)
        return frame

    def analyse(frame: DecodedFrame | None) -> list[FramePlan]:
        """Detect, track and plan; return the plans of the frames now past the look-ahead."""
        if frame is None:
            with clock.measure("plan"):
                return planner.finish()
        searched = searched_classes(frame.index, video_params, classes)
        everything = searched == classes
        with clock.measure("motion"):
            motion = camera.update(frame.rgb) if camera is not None else None
        with clock.measure("detect"):
            detections = engine.detect(frame.rgb, scales=frame_scales, only=searched) if searched else None
        if features is not None:
            with clock.measure("features"):  # drift statistics, before masking, on fully searched frames
                features.frame(frame.index, frame.rgb, detections if everything else None)
        with clock.measure("plan"):
            plans = planner.push(frame.index, detections, motion, None if everything else frozenset(map(int, searched)))
        if not searched and video_params.roi_redetect and planner.current:
            with clock.measure("detect"):
                planner.add_roi(frame.index, _redetect(engine, frame.rgb, planner.current, video_params.roi_context,
                                                       frame_scales))
        return plans

    try:
        if info.width * info.height > LARGE_FRAME_PIXELS:
            result = _two_passes(src, out, info, video_params, container, clock, analyse, regions_of, paint, engine)
        else:
            result = _one_pass(src, out, info, video_params, container, clock, analyse, regions_of, paint)
    finally:
        boxes_writer.close()
    decode_log = result.decode_log
    frames_decoded = result.frames_decoded

    tracks = [
        TrackSummary(
            id=s.track_id, object_class=class_label(s.object_class), first_frame=s.first_frame, last_frame=s.last_frame,
            detected_frames=s.detected_frames, min_score=round(s.min_score, 4), max_score=round(s.max_score, 4),
            filled={k: v for k, v in s.filled.items() if v},
        )
        for s in sorted(planner.stats.values(), key=lambda s: s.track_id)
    ]
    return VideoSummary(
        container=container,
        codec_in=info.codec,
        codec_out=ENCODER_BY_CODEC[video_params.codec],
        width=info.width, height=info.height, rotation=info.rotation,
        frames_declared=info.frame_count, frames_decoded=frames_decoded, frames_written=result.frames_written,
        frames_detected=run.frames_detected, detect_stride=video_params.detect_stride,
        duration_in_s=info.duration_s, audio_streams=list(result.audio_codecs), dropped_streams=list(info.dropped_streams),
        tracks=tracks, untracked_detections=max(0, run.untracked), detection_gaps=len(run.gaps),
        detection_gap_frames=run.gaps[:MAX_LISTED], review_band_frames=dict(run.review_frames),
        decode_warnings=decode_log.warnings[:MAX_LISTED], decode_warning_count=decode_log.warnings.total,
        corrupt_frames=decode_log.corrupt_frames[:MAX_LISTED], stage_seconds=clock.seconds(),
    )


def _one_pass(src, out, info, video_params, container, clock, analyse, regions_of, paint):
    """Frames wait in memory for their plans (the look-ahead), then are masked and encoded."""
    waiting: deque[DecodedFrame] = deque()

    def stage(frame: DecodedFrame | None) -> list[DecodedFrame]:
        if frame is not None:
            waiting.append(frame)
        ready = []
        for plan in analyse(frame):
            frame_out = waiting.popleft()
            if frame_out.index != plan.index:
                raise ProcessingError(f"mask plan for frame {plan.index} met frame {frame_out.index}")
            ready.append(paint(frame_out, regions_of(plan, frame_out.pts)))
        return ready

    return transcode(src, out, info, video_params, stage, container=container, clock=clock)


def _two_passes(src, out, info, video_params, container, clock, analyse, regions_of, paint, engine):
    """For large frames (4K: 25 MB each), no frame waits in memory: a first decoding pass detects and plans,
    keeping only each frame's regions; a second decodes again to mask and encode. Costs a second decode."""
    planned: deque[tuple[int, list[MaskRegion]]] = deque()
    timestamps: deque[int] = deque()

    def keep(plans: list[FramePlan]) -> None:
        for plan in plans:
            planned.append((plan.index, regions_of(plan, timestamps.popleft())))

    with VideoReader(src) as reader:
        for frame in timed_frames(reader, clock):
            timestamps.append(frame.pts)
            keep(analyse(frame))
    keep(analyse(None))
    engine.release_memory()

    def stage(frame: DecodedFrame | None) -> list[DecodedFrame]:
        if frame is None:
            if planned:
                raise ProcessingError(f"the second decoding pass ended {len(planned)} frame(s) early")
            return []
        if not planned or planned[0][0] != frame.index:
            raise ProcessingError(f"the second decoding pass met frame {frame.index} without its plan")
        return [paint(frame, planned.popleft()[1])]

    return transcode(src, out, info, video_params, stage, container=container, clock=clock)


def searched_classes(index: int, video: VideoParams, classes: frozenset[ObjectClass]) -> frozenset[ObjectClass]:
    """The classes the detector looks for on frame ``index``: faces every ``detect_stride`` frames, plates
    on every ``plate_every``-th of those."""
    if index % video.detect_stride:
        return frozenset()
    if index % video.plate_stride:
        return classes - {ObjectClass.LICENSE_PLATE}
    return classes


def _redetect(
    engine: Engine, rgb: np.ndarray, tracks: list[TrackObservation], context: float,
    scales: dict[ObjectClass, ScalePlan],
) -> Detections:
    boxes: dict[ObjectClass, list] = {}
    for track in tracks:
        boxes.setdefault(ObjectClass(track.object_class), []).append(track.box)
    arrays = {c: np.array(b, dtype=np.float32) for c, b in boxes.items()}
    return engine.detect_around(rgb, arrays, context=context, scales=scales)


def _track_counts(summary: VideoSummary) -> dict[str, int]:
    """Per class, the number of distinct tracked objects masked."""
    counts = {c.label: 0 for c in ObjectClass}
    for track in summary.tracks:
        counts[track.object_class] += 1
    return counts


def _review_reasons(summary: VideoSummary, params: Params) -> list[str]:
    reasons = []
    if summary.decode_warning_count:
        reasons.append(
            f"{summary.decode_warning_count} decode warning(s): {summary.frames_decoded} decoded frame(s) were all "
            f"masked, but frames may be missing or damaged"
        )
    elif summary.frames_declared and summary.frames_declared != summary.frames_decoded:
        reasons.append(f"the container declares {summary.frames_declared} frames, {summary.frames_decoded} decoded")
    for label, frames in summary.review_band_frames.items():
        bounds = params.detector.thresholds(label)
        action = "masked" if params.mask.mask_review_band else "NOT masked"
        reasons.append(
            f"{label} detection(s) in the review band [{bounds.review_floor:.2f}, {bounds.threshold:.2f}) on "
            f"{frames} frame(s), {action}"
        )
    return reasons
