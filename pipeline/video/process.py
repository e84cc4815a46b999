"""Process one video: decode, detect, track, plan, mask, encode, remux audio, and report.

Frames stream through a bounded look-ahead buffer (``params.video.lookahead_frames``): the memory held is
that many decoded frames, whatever the video's length. Frames above 1440p (4K: 25 MB each) are not held at
all: a first decoding pass detects and plans, a second decodes again to mask and encode. The output and its boxes companion are written
under temporary names beside ``dst`` and renamed only when complete; on any failure both are removed.
"""

from __future__ import annotations

import math
import os
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.detect.engine import Engine
from pipeline.detect.views import Views
from pipeline.edits import EditCounts, Edits
from pipeline.errors import ProcessingError
from pipeline.features import VideoFeatures
from pipeline.mask import apply_masks
from pipeline.media.video.frames import LARGE_FRAME_PIXELS, DecodedFrame
from pipeline.media.video.probe import VideoInfo, probe_video
from pipeline.media.video.reader import VideoReader, timed_frames
from pipeline.media.video.transcode import TranscodeResult, transcode
from pipeline.media.video.writer import ENCODER_BY_CODEC, output_container
from pipeline.params import Params, ScalePlan
from pipeline.qc import FileInfo, QCReport, TrackSummary, VideoSummary
from pipeline.records import Detections, MaskRegion, ObjectClass
from pipeline.report import output_info, record_video, start_report
from pipeline.timing import StageClock
from pipeline.track.bytetrack import TrackObservation
from pipeline.track.motion import CameraMotion, small_grey
from pipeline.video.keyframes import KeyframeClock, LightBlindness, TiltedViews, light_misses, tracks_of
from pipeline.video.light_plan import scene_plans
from pipeline.video.plan import FramePlan, MaskPlanner
from pipeline.video.qc import BOXES_SUFFIX, MAX_LISTED, BoxesWriter, class_label
from pipeline.video.regions import RegionCounters, frame_regions
from pipeline.video.schedule import redetect_around, redetected_classes, searched_classes

DEFAULT_FPS = 30.0  # for keyframe timing when a stream declares no rate
# Work that needs only one frame, made ahead on threads of their own: a searched 1080p frame's detector views
# (3-10 ms) and the corners camera motion follows out of each frame (a third of its work). So neither the look
# thread nor the detection thread, each of which every frame waits for, spends it.
AHEAD_THREADS = 2


def companion_name(dst: Path) -> str:
    return dst.name + BOXES_SUFFIX


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def process_video(
    src: Path, dst: Path, params: Params, engine: Engine, *, name: str, edits: Edits | None = None,
    progress: Callable[[], None] | None = None,
) -> QCReport:
    """Mask every frame of ``src`` into ``dst`` (same container), with a boxes companion beside it.
    ``progress`` is called once per decoded frame (twice when large frames take two passes) and once per
    batch of re-detection windows around the tracks."""
    edits, edit_counts = edits or Edits(), EditCounts()
    info = probe_video(src)
    features = VideoFeatures.for_video(params, info.average_rate, info.codec, info.width, info.height)  # drift
    report = start_report(name, params, engine)
    report.input = FileInfo(name=name, media_type="video", format=info.container, width=info.width, height=info.height)
    boxes_path = dst.with_name(companion_name(dst))
    partial_video, partial_boxes = _partial(dst), _partial(boxes_path)
    try:
        container = output_container(dst)
        job = VideoJob(info, params, engine, partial_boxes, features=features, edits=edits, edit_counts=edit_counts,
                       progress=progress)
        summary = job.run(src, partial_video, container, two_passes=info.width * info.height > LARGE_FRAME_PIXELS)
        os.replace(partial_boxes, boxes_path)
        os.replace(partial_video, dst)
    except BaseException:
        for leftover in (partial_video, partial_boxes, boxes_path, dst):
            leftover.unlink(missing_ok=True)
        raise

    report.companions = [boxes_path.name]
    report.output = output_info(name, dst, "video", summary.container, info.width, info.height)
    record_video(report, summary, params)
    report.features = features.result(report.video)  # drift statistics (pipeline/features.py)
    report.edits = edits.summary(edit_counts)
    return report


@dataclass(frozen=True)
class _Look:
    deep: bool  # a keyframe: by its time, or the first after a scene cut
    cut: bool  # the first frame after a scene cut
    motion: np.ndarray | None  # the camera's motion from the frame before (None: camera motion is off)
    searched: frozenset[ObjectClass]  # empty: the stride skips the frame
    views: Future[Views]  # what each searched class's detector sees of the frame (Engine.views), being made


@dataclass
class _Waiting:
    """A decoded frame waiting for its detection, with what was decided as it arrived."""

    frame: DecodedFrame
    deep: bool  # a keyframe: the photo plan on every class
    cut: bool  # the first frame after a scene cut
    searched: frozenset[ObjectClass]  # empty: the stride skips the frame
    motion: np.ndarray | None
    scales: dict[ObjectClass, ScalePlan]  # the light plans
    views: Views
    detections: Detections | None = None


class VideoJob:
    """One video's transcode: what every frame shares (detector, planner, camera motion, edits, counters, the
    boxes companion, the stage clock), with one method per step a frame goes through."""

    def __init__(
        self, info: VideoInfo, params: Params, engine: Engine, boxes: Path, *, features: VideoFeatures | None = None,
        edits: Edits | None = None, edit_counts: EditCounts | None = None, progress: Callable[[], None] | None = None,
    ) -> None:
        self.info, self.params, self.engine = info, params, engine
        self.video = params.video
        self.features = features
        self.edits, self.edit_counts = edits or Edits(), edit_counts
        self.progress = progress or _still
        self.scales = self.video.frame_plans()
        self.classes = frozenset(ObjectClass.from_label(label) for label in params.detector.classes)
        self.fps = float(info.average_rate) if info.average_rate else DEFAULT_FPS
        self.keyframes = KeyframeClock(self.video.keyframe_interval_s, on_cuts=self.video.keyframe_on_cuts)
        self.blindness = LightBlindness()
        tilted = ObjectClass.FACE in self.classes and engine.tilts(ObjectClass.FACE)  # as the engine's plan runs them
        self.tilted_views = TiltedViews(self.video.tilted_keyframes_every if tilted else 0)
        horizon = math.ceil(self.video.keyframe_interval_s * self.fps)
        self.planner = MaskPlanner(self.video.covering(horizon), params.detector, (info.width, info.height),
                                   mask_review_band=params.mask.mask_review_band)
        self.ahead = ThreadPoolExecutor(AHEAD_THREADS, thread_name_prefix="veil-ahead")  # threads start on use
        self.camera = CameraMotion(self.ahead) if self.video.camera_motion else None
        self.counters = RegionCounters(params)
        self.light_plans: Counter[str] = Counter()  # light passes by what they searched, for the sidecar
        self.plate_input = params.detector.for_class(ObjectClass.LICENSE_PLATE).model.input_size or 640
        self.clock = StageClock()
        self.pending: deque[_Waiting] = deque()  # frames waiting for their light pass (``analyse``)
        self.looks: dict[int, _Look] = {}  # by frame index: what ``look`` saw, until ``analyse`` takes it
        self.to_paint: dict[int, list[MaskRegion]] = {}  # by frame index: its regions, until ``paint`` takes them
        self.shape = (info.height, info.width, 3)  # upright frames
        self.boxes = BoxesWriter(boxes, width=info.width, height=info.height, time_base=str(info.time_base),
                                 rate=str(info.average_rate) if info.average_rate else None)

    def run(self, src: Path, out: Path, container: str, *, two_passes: bool) -> VideoSummary:
        """Transcode ``src`` into ``out``, masked; the summary for the QC report."""
        try:
            result = self._two_passes(src, out, container) if two_passes else self._one_pass(src, out, container)
        finally:
            self.ahead.shutdown(cancel_futures=True)
            self.boxes.close()
        return self._summary(result, container)

    def look(self, frame: DecodedFrame) -> None:
        """What a frame shows before any detection: whether it gets the deep pass (by its time, or after a scene
        cut), the camera's motion into it, the classes searched on it and their detectors' views of it (the
        exposure and focus measures). It needs only the frames, in order, so it runs ahead of detection on a
        thread of its own (``transcode``'s ``early``). What needs only the frame, the views (3-10 ms a searched
        1080p frame) and the corners camera motion follows, is made on the ``ahead`` threads, a few frames side
        by side. ``analyse`` takes the result."""
        with self.clock.measure("motion"):
            # one small grey picture for both, and none when neither looks (about 1.8 ms a 1080p frame)
            grey, scale = small_grey(frame.rgb) if self.camera is not None or self.keyframes.on_cuts else (None, 1.0)
            deep = self.keyframes.due(self._seconds(frame), grey)
            motion = self.camera.update(grey, scale) if self.camera is not None and grey is not None else None
        searched = self.classes if deep else searched_classes(frame.index, self.video, self.classes)
        views = self.ahead.submit(self._views, frame.rgb, searched)
        self.looks[frame.index] = _Look(deep, deep and self.keyframes.cut, motion, searched, views)

    def _views(self, rgb: np.ndarray, searched: frozenset[ObjectClass]) -> Views:
        if not searched:
            return {}
        with self.clock.measure("detect"):
            return self.engine.views(rgb, searched)

    def analyse(self, frame: DecodedFrame | None) -> list[FramePlan]:
        """Detect, track and plan a frame ``look`` has seen; return the plans of the frames now past the look-ahead.

        A frame waits in ``pending`` until its light pass has run: up to ``engine.max_batch`` detected frames
        share the network's calls (one on the CPU: each frame's pass runs as it arrives). A keyframe's deep
        pass, and the end of the video, run the waiting batch first. Then the frames are tracked in order."""
        if frame is None:
            plans = self._run_pending()
            with self.clock.measure("plan"):
                return plans + self.planner.finish()
        self.progress()
        waiting = self._prepare(frame, self.looks.pop(frame.index))
        self.pending.append(waiting)
        batch_full = sum(1 for w in self.pending if w.searched) >= self.engine.max_batch
        if waiting.deep or batch_full or not any(w.searched for w in self.pending):
            return self._run_pending()
        return []

    def _prepare(self, frame: DecodedFrame, seen: _Look) -> _Waiting:
        """What a frame's detection needs: keyframe or not and the camera's motion (``look``), the classes
        searched, and the light plans (from the tracks known now: a batch's later frames use the tracks as they
        were at its first)."""
        searched = seen.searched
        scales = self._light_scales(searched) if searched and not seen.deep else self.scales
        return _Waiting(frame, seen.deep, seen.cut, searched, seen.motion, scales, seen.views.result())

    def _run_pending(self) -> list[FramePlan]:
        """Run the waiting frames' light passes as one batch, then track and plan each frame in order."""
        light = [w for w in self.pending if w.searched and not w.deep]
        if light:
            with self.clock.measure("detect"):
                found = self.engine.detect_frames([w.frame.rgb for w in light], [w.scales for w in light],
                                                  [w.searched for w in light], [w.views for w in light])
            for waiting, detections in zip(light, found):
                waiting.detections = detections
        plans = []
        while self.pending:
            plans += self._track(self.pending.popleft())
        return plans

    def _track(self, waiting: _Waiting) -> list[FramePlan]:
        """A frame with its light pass run: a keyframe's deep pass, drift statistics, tracking and planning,
        then re-detection around the tracks for the classes not searched on it."""
        frame, searched = waiting.frame, waiting.searched
        everything = searched == self.classes
        detections, light = waiting.detections, None
        self.tilted_views.rolled(waiting.motion)
        if waiting.deep:
            with self.clock.measure("detect"):
                deep = self.engine.detect_deep(
                    frame.rgb, self.scales, only=searched, views=waiting.views, tilted=self.tilted_views.due(waiting.cut))
            detections, light = deep.everything, deep.light
            self.tilted_views.ran(len(deep.tilted), deep.leaning_sides)
        if self.features is not None:
            with self.clock.measure("features"):  # drift statistics, before masking, on fully searched frames
                self.features.frame(frame.index, frame.rgb, detections if everything else None)
        with self.clock.measure("plan"):
            plans = self.planner.push(frame.index, detections, waiting.motion,
                                      None if everything else frozenset(map(int, searched)))
            if detections is not None:
                self._note_light_plan(frame.index, detections, light)
        again = redetected_classes(frame.index, searched, self.video, self.classes)
        if again:
            self._redetect_around_tracks(frame, again)
        return plans

    def _seconds(self, frame: DecodedFrame) -> float:
        if frame.pts is None:
            return frame.index / self.fps
        return float(frame.pts * self.info.time_base)

    def _note_light_plan(self, index: int, detections: Detections, light: Detections | None) -> None:
        """The tracks the light plan found on this frame; on a keyframe (``light`` given), also the confident
        deep finds it missed, counted and tied to their tracks (pipeline/video/keyframes.py)."""
        current = self.planner.current
        self._light_saw(detections if light is None else light, current)
        if light is None:
            return
        found, missed = light_misses(detections, light, self.params.detector)
        self.keyframes.stats.deep_found += found
        self.keyframes.stats.light_missed += len(missed)
        self.blindness.keyframe(index, tracks_of(missed, current))

    def _light_scales(self, searched: frozenset[ObjectClass]) -> dict[ObjectClass, ScalePlan]:
        """The frame plans as the scene asks for them (pipeline/video/light_plan.py), only behind a deep pass
        that backs them up."""
        if not (self.video.scene_plans and self.video.keyframe_interval_s):
            return self.tilted_views.light_plans(self.scales)
        plans, scale, plate_tiles = scene_plans(self.scales, self.planner.current, max(self.info.width, self.info.height),
                                                self.video, self.plate_input)
        if ObjectClass.FACE in searched:
            self.light_plans[f"face x{scale:g}"] += 1
        if ObjectClass.LICENSE_PLATE in searched:
            self.light_plans["plates, tiles" if plate_tiles else "plates, whole frame"] += 1
        return self.tilted_views.light_plans(plans)

    def _redetect_around_tracks(self, frame: DecodedFrame, classes: frozenset[ObjectClass]) -> None:
        """On a frame the stride skips (or for a class not searched on it), look again around every live track
        of those classes (faces and plates seen at a glance)."""
        tracks = [t for t in self.planner.current
                  if ObjectClass(t.object_class) in classes and (self.video.roi_every_track or not t.settled)]
        if not tracks:
            return
        with self.clock.measure("detect"):
            found = redetect_around(self.engine, frame.rgb, tracks, self.video.roi_context, self.scales, self.progress)
            self.planner.add_roi(frame.index, found)
        self._light_saw(found, tracks)

    def _light_saw(self, found: Detections, tracks: list[TrackObservation]) -> None:
        """The light plan found ``found``: the tracks they belong to are not blind (pipeline/video/keyframes.py)."""
        self.blindness.seen(track for _, track in tracks_of(found, tracks) if track is not None)

    def regions_of(self, plan: FramePlan, pts: int) -> list[MaskRegion]:
        """The frame's final regions, recorded in the companion and the counts."""
        regions = frame_regions(plan, self.params, self.shape)
        # Edits (pipeline/edits.py): suppressed regions leave the frame's masks, add polygons join them.
        regions = [(r, t) for r, t in regions if not self.edits.suppresses(r, self.shape, plan.index, self.edit_counts)]
        if self.edit_counts is not None:
            self.edits.count_adds(plan.index, self.edit_counts)
        self.boxes.frame(plan, pts, regions)
        self.counters.account(plan, regions)
        return [r for r, _ in regions]

    def paint(self, frame: DecodedFrame) -> None:
        """Mask a frame with the regions planned for it (taken from ``to_paint``). It changes nothing but the
        frame, so it runs on the encoder's conversion threads, a few frames side by side (``transcode``'s
        ``late``); a frame without its regions raises, and the transcode fails."""
        regions = self.to_paint.pop(frame.index)
        with self.clock.measure("mask"):
            apply_masks(frame.rgb, regions, self.params.mask)
            self.edits.apply_adds(frame.rgb, frame.index, self.params.mask)  # counted in ``regions_of``

    def _one_pass(self, src: Path, out: Path, container: str) -> TranscodeResult:
        """Frames wait in memory for their plans (the look-ahead), then are masked and encoded."""
        waiting: deque[DecodedFrame] = deque()

        def stage(frame: DecodedFrame | None) -> list[DecodedFrame]:
            if frame is not None:
                waiting.append(frame)
            ready = []
            for plan in self.analyse(frame):
                frame_out = waiting.popleft()
                if frame_out.index != plan.index:
                    raise ProcessingError(f"mask plan for frame {plan.index} met frame {frame_out.index}")
                self.to_paint[plan.index] = self.regions_of(plan, frame_out.pts)
                ready.append(frame_out)
            return ready

        return transcode(src, out, self.info, self.video, stage, container=container, clock=self.clock,
                         early=self.look, late=self.paint)

    def _two_passes(self, src: Path, out: Path, container: str) -> TranscodeResult:
        """For large frames (4K: 25 MB each), no frame waits in memory: a first decoding pass detects and plans,
        keeping only each frame's regions; a second decodes again to mask and encode. Costs a second decode."""
        planned: deque[tuple[int, list[MaskRegion]]] = deque()
        timestamps: deque[int] = deque()

        def keep(plans: list[FramePlan]) -> None:
            for plan in plans:
                planned.append((plan.index, self.regions_of(plan, timestamps.popleft())))

        with VideoReader(src, clock=self.clock) as reader:
            for frame in timed_frames(reader, self.clock):
                timestamps.append(frame.pts)
                self.look(frame)
                keep(self.analyse(frame))
        keep(self.analyse(None))
        self.engine.release_memory()

        def stage(frame: DecodedFrame | None) -> list[DecodedFrame]:
            if frame is None:
                if planned:
                    raise ProcessingError(f"the second decoding pass ended {len(planned)} frame(s) early")
                return []
            self.progress()
            if not planned or planned[0][0] != frame.index:
                raise ProcessingError(f"the second decoding pass met frame {frame.index} without its plan")
            self.to_paint[frame.index] = planned.popleft()[1]
            return [frame]

        return transcode(src, out, self.info, self.video, stage, container=container, clock=self.clock, late=self.paint)

    def _summary(self, result: TranscodeResult, container: str) -> VideoSummary:
        info, video, counters, log = self.info, self.video, self.counters, result.decode_log
        return VideoSummary(
            container=container, codec_in=info.codec, codec_out=ENCODER_BY_CODEC[video.codec],
            width=info.width, height=info.height, rotation=info.rotation,
            frames_declared=info.frame_count, frames_decoded=result.frames_decoded,
            frames_written=result.frames_written, frames_detected=counters.frames_detected,
            detect_stride=video.detect_stride, duration_in_s=info.duration_s, audio_streams=list(result.audio_codecs),
            dropped_streams=[*info.dropped_streams, *result.dropped_audio], tracks=self._tracks(),
            untracked_detections=max(0, counters.untracked), detection_gaps=len(counters.gaps),
            detection_gap_frames=counters.gaps[:MAX_LISTED], review_band_frames=dict(counters.review_frames),
            decode_warnings=log.warnings[:MAX_LISTED], decode_warning_count=log.warnings.total,
            corrupt_frames=log.corrupt_frames[:MAX_LISTED], keyframes=self.keyframes.stats.keyframes,
            scene_cuts=self.keyframes.stats.scene_cuts, keyframe_objects=self.keyframes.stats.deep_found,
            light_plan_missed=self.keyframes.stats.light_missed, light_blind_intervals=self.blindness.blind_intervals(),
            tilted_keyframes=self.tilted_views.keyframes, tilted_faces=self.tilted_views.added,
            tilted_frames=self.tilted_views.frames, tilted_frame_views=dict(self.tilted_views.frame_views),
            tilted_intervals=self.tilted_views.leaning_intervals,
            light_plans=dict(self.light_plans), stage_seconds=self.clock.seconds(),
        )

    def _tracks(self) -> list[TrackSummary]:
        return [
            TrackSummary(
                id=s.track_id, object_class=class_label(s.object_class), first_frame=s.first_frame,
                last_frame=s.last_frame, detected_frames=s.detected_frames, min_score=round(s.min_score, 4),
                max_score=round(s.max_score, 4), filled={k: v for k, v in s.filled.items() if v},
            )
            for s in sorted(self.planner.stats.values(), key=lambda s: s.track_id)
        ]


def _still() -> None:
    """No one listens for progress."""
