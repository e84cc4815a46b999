"""The detection engine: loaded models plus the scale plan that feeds them. Built once per worker."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar, cast

import numpy as np
import onnxruntime as ort

from pipeline.detect.base import Detector
from pipeline.detect.catalogue import default_model_dir, find_file, find_source
from pipeline.detect.families import family
from pipeline.detect.mosaic import detect_packed
from pipeline.detect.nms import merge
from pipeline.detect.onnx import load_session
from pipeline.detect.precision import exact_int8_kernels
from pipeline.detect.runtime import RuntimeParams
from pipeline.detect.shared_batches import SharedBatches
from pipeline.detect.sideways import sideways_finds, unseen_upright
from pipeline.detect.views import Views, detector_views
from pipeline.detect.windows import Window, batches, plan_windows, roi_windows
from pipeline.errors import ModelError, QuantizationError
from pipeline.params import DetectorParams, ModelSpec, ScalePlan
from pipeline.qc import ModelRecord
from pipeline.records import Detections, ObjectClass


class DeepFinds(NamedTuple):
    """A keyframe's deep pass (``Engine.detect_deep``)."""

    everything: Detections
    light: Detections  # what the light frame plan's share of it saw
    tilted: Detections  # what the 45-degree views added: confident faces the upright views had not found as surely
    # Of those, the faces the light plan's share had not found surely: where they see them, the shot leans. A
    # head leaning a little in an upright shot is found by both, the tilted view more surely.
    tilted_unseen: Detections
    leaning_sides: tuple[int, ...] = ()  # the tilted views (``ScalePlan.tilt_sides``) that saw those faces


@dataclass(frozen=True)
class _Loaded:
    spec: ModelSpec
    network: Detector
    object_class: ObjectClass
    scales: ScalePlan
    record: ModelRecord


# Re-detection falls back to one whole-image pass beyond these. A free-input detector's windows run in
# batches of one size, whatever their number (a crowd): only their pixels cost, and overlapping windows search
# the same pixels twice. A fixed-input detector's windows share canvases of its input, each a whole pass.
ROI_MAX_AREA = 0.5  # share of the picture
ROI_MAX_PACKED_WINDOWS = 64
# A batch of re-detection windows holds at most this many pixels (a 1080p frame), so its activations are no
# larger than a whole-frame pass's: on 4K frames the windows are large and an unbounded batch grew memory by
# 400 MB. Plan windows and frames are bounded by ``max_batch`` alone.
BATCH_PIXELS = 1920 * 1088

# The classes' threads side by side, for all the callers of one engine together (each caller runs its first
# class itself): enough for a GPU host's videos on threads of one process; more would wait their turn.
MOST_CLASS_THREADS = 32

T = TypeVar("T")


def _still() -> None:
    """No one to tell about progress."""


class Engine:
    def __init__(self, detectors: list[_Loaded], params: DetectorParams, *, max_batch: int = RuntimeParams().max_batch,
                 classes_side_by_side: bool = False):
        self._detectors = detectors
        self.params = params
        self.max_batch = max_batch  # images (windows, frames) per network call (RuntimeParams.max_batch)
        # Each class's detector on a thread of its own (RuntimeParams.classes_side_by_side): made on first use.
        self._side_by_side = classes_side_by_side and len(detectors) > 1
        self._threads: ThreadPoolExecutor | None = None
        self._threads_lock = threading.Lock()

    @classmethod
    def load(cls, detector: DetectorParams, runtime: RuntimeParams = RuntimeParams(), *, shared_batches: int = 0
             ) -> "Engine":
        """``shared_batches``: for threads of one process sharing this engine (several videos), their concurrent
        calls on inputs of one shape run as one batch of up to this many images (``shared_batches.py``)."""
        model_dir = runtime.model_dir or default_model_dir()
        loaded = []
        for label in detector.classes:
            object_class = ObjectClass.from_label(label)
            settings = detector.for_class(object_class)
            if label not in settings.model.classes:
                raise ModelError(f"model {settings.model.name!r} does not declare class {label!r} "
                                 f"(declares {settings.model.classes})")
            loaded.append(_load_one(settings.model, object_class, settings.scales, model_dir, runtime, shared_batches))
        return cls(loaded, detector, max_batch=runtime.max_batch, classes_side_by_side=runtime.side_by_side)

    @property
    def model_records(self) -> list[ModelRecord]:
        return [d.record for d in self._detectors]

    def detect(
        self, rgb: np.ndarray, min_score: float | None = None, scales: dict[ObjectClass, ScalePlan] | None = None,
        only: frozenset[ObjectClass] | None = None, progress: Callable[[], None] | None = None,
    ) -> Detections:
        """All configured classes (or those in ``only``) in an HxWx3 uint8 RGB image, boxes in its pixels.

        Scores go down to each class's review floor, or to ``min_score`` when given (evaluation).
        ``scales`` replaces the configured scale plan of a class (video frames use a lighter one).
        Every detector runs on its own windows whatever the others found: no class is ever skipped because
        another one was seen. ``progress`` is called after each window (a large photo's plan runs for minutes:
        the worker's heartbeat must not take that for a hang).
        """
        return self.merged(self.candidates(rgb, min_score, scales, only, progress))

    def candidates(
        self, rgb: np.ndarray, min_score: float | None = None, scales: dict[ObjectClass, ScalePlan] | None = None,
        only: frozenset[ObjectClass] | None = None, progress: Callable[[], None] | None = None,
    ) -> Detections:
        """``detect`` before the cross-window merge: every window's raw boxes."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
        return self._candidates([rgb], [scales or {}], [only], min_score, progress or _still)[0]

    def detect_frames(
        self, images: list[np.ndarray], scales: list[dict[ObjectClass, ScalePlan]], only: list[frozenset[ObjectClass]],
        views: list[Views] | None = None,
    ) -> list[Detections]:
        """``detect`` on several images at once (a video's detected frames): image i with the plans ``scales[i]``,
        on the classes ``only[i]``. Each class's windows of all the images share the network's calls,
        ``max_batch`` a call; each result is what ``detect`` gives that image alone. ``views``: each image's
        ``views`` of its classes, made beforehand (on another thread)."""
        return [self.merged(found) for found in self._candidates(images, scales, only, views=views)]

    def detect_deep(
        self, rgb: np.ndarray, light: dict[ObjectClass, ScalePlan], only: frozenset[ObjectClass] | None = None,
        views: Views | None = None, tilted: bool = True,
    ) -> DeepFinds:
        """The photo plan (each class's configured scales, less the quarter turns, and less the 45-degree views
        unless ``tilted``) on a video keyframe. The light plan's windows are run once and shared, so the deep
        pass costs only the windows the light plan lacks. ``views``: as ``detect_frames``."""
        height, width = rgb.shape[:2]
        fed = self.views(rgb, only) if views is None else views

        def one(detector: _Loaded, _: Callable[[], None]) -> tuple[list[Detections], tuple[int, ...]]:
            view = fed[detector.object_class]
            fixed = detector.network.fixed_input
            light_windows = plan_windows(height, width, light.get(detector.object_class, detector.scales), fixed)
            # Without the quarter turns: frames are turned upright by the stream's rotation (docs/video.md).
            deep = detector.scales.model_copy(update={"rotate_90": False, "tilt_45": tilted and detector.scales.tilt_45})
            extra = [w for w in plan_windows(height, width, deep, fixed) if w not in light_windows]
            floor = self.params.thresholds(detector.object_class).review_floor
            seen = self._run_windows(detector, view, light_windows, floor)
            upright = Detections.concat([seen, self._run_windows(detector, view, [w for w in extra if not w.turned], floor)])
            tilted_windows = [w for w in extra if w.turned]
            confident = self.params.thresholds(detector.object_class).threshold
            # Each view's finds apart (the same network calls), held to the photos' rules: the view that saw an
            # unseen face is the way the shot leans.
            leaning = self._run_views(detector, [(view, w) for w in tilted_windows], floor)
            added = [sideways_finds(found, upright, confident) for found in leaning]
            unseen = [unseen_upright(a, seen, confident) for a in added]
            sides = tuple(int(w.tilt) for w, u in zip(tilted_windows, unseen) if len(u) and w.tilt)
            return [upright, seen, Detections.concat(added), Detections.concat(unseen)], sides

        found = self._each_class(one, only=only)
        upright, seen, added, unseen = (Detections.concat([finds[i] for finds, _ in found]) for i in range(4))
        return DeepFinds(self.merged(Detections.concat([upright, added])), self.merged(seen), self.merged(added),
                         self.merged(unseen), tuple(sorted({side for _, sides in found for side in sides})))

    def tilts(self, object_class: ObjectClass) -> bool:
        """Whether ``detect_deep``, asked for them, runs the 45-degree views for ``object_class``: its plan has them."""
        return any(d.object_class == object_class and d.scales.tilt_45 for d in self._detectors)

    def views(self, rgb: np.ndarray, only: Collection[ObjectClass] | None = None) -> Views:
        """What each class's detector (those in ``only``, if given) sees of ``rgb``: levelled if it is
        underexposed, the plates' view smoothed then or sharpened if it is out of focus, as far as the profile
        says so (``views.detector_views``). It needs only the picture, so a video makes it ahead of detection."""
        classes = [d.object_class for d in self._detectors if only is None or d.object_class in only]
        return detector_views(rgb, classes, level_dark=self.params.level_dark,
                              sharpen_blurred=self.params.sharpen_blurred)

    def _each_class(
        self, work: Callable[[_Loaded, Callable[[], None]], T], progress: Callable[[], None] = _still,
        only: Collection[ObjectClass] | None = None,
    ) -> list[T]:
        """``work(detector, progress)`` for each detector (those of ``only``, if given), in the detectors' order.
        Side by side, each runs on a thread of its own (the first on the caller's): the classes never depend on
        each other, so a GPU runs one class's network while the host prepares or decodes the other's. The
        results, and their order, are the same either way; ``progress`` is then called by one thread at a time.
        Several callers (videos on threads sharing this engine) each get threads of their own."""
        detectors = [d for d in self._detectors if only is None or d.object_class in only]
        if not self._side_by_side or len(detectors) < 2:
            return [work(detector, progress) for detector in detectors]
        one_at_a_time = threading.Lock()

        def told() -> None:
            with one_at_a_time:
                progress()

        with self._threads_lock:
            if self._threads is None:  # threads are started as callers need them, and kept
                self._threads = ThreadPoolExecutor(MOST_CLASS_THREADS, thread_name_prefix="veil-class")
            threads = self._threads
        others = [threads.submit(work, detector, told) for detector in detectors[1:]]
        try:
            first = work(detectors[0], told)
        finally:
            wait(others)  # none is left running when the caller's own class fails
        return [first, *(other.result() for other in others)]

    def merged(self, candidates: Detections) -> Detections:
        return merge(candidates, self.params.nms_iou)

    def at_review_floors(self, candidates: Detections) -> Detections:
        """The candidates that ``detect`` at the production floors would have seen. The networks only filter
        by score, so candidates gathered at a lower evaluation floor and cut here, then merged, are exactly
        what the shipped path masks."""
        return at_floors(candidates, self.params)

    def _candidates(
        self, images: list[np.ndarray], scales: list[dict[ObjectClass, ScalePlan]],
        only: Sequence[frozenset[ObjectClass] | None], min_score: float | None = None, progress: Callable[[], None] = _still,
        views: list[Views] | None = None,
    ) -> list[Detections]:
        """Each image's raw boxes: every class it searches (``only[i]``; None: all) on every window of its plan
        (``scales[i]``, else the class's configured one), the class's windows of all the images sharing the
        network's calls. Each detector runs on its own windows whatever the others found."""
        feeds = views if views is not None else [self.views(rgb, classes) for rgb, classes in zip(images, only)]

        def one(detector: _Loaded, progress: Callable[[], None]) -> dict[int, list[Detections]]:
            """This class's finds in each image that searches it: the upright views', then the sideways ones'."""
            floor = self.params.thresholds(detector.object_class).review_floor if min_score is None else min_score
            owners, pictures = [], []
            for index, (fed, classes) in enumerate(zip(feeds, only)):
                if classes is None or detector.object_class in classes:
                    rgb = fed[detector.object_class]
                    plan = scales[index].get(detector.object_class, detector.scales)
                    windows = plan_windows(rgb.shape[0], rgb.shape[1], plan, detector.network.fixed_input)
                    owners += [index] * len(windows)
                    pictures += [(rgb, window) for window in windows]
            upright: dict[int, list[Detections]] = {index: [] for index in owners}
            sideways: dict[int, list[Detections]] = {index: [] for index in owners}
            for index, (_, window), detections in zip(owners, pictures, self._run_views(detector, pictures, floor, progress)):
                (sideways if window.turned else upright)[index].append(detections)
            confident = self.params.thresholds(detector.object_class).threshold
            parts = {}
            for index in upright:
                seen = Detections.concat(upright[index])
                parts[index] = [seen, sideways_finds(Detections.concat(sideways[index]), seen, confident)]
            return parts

        found: list[list[Detections]] = [[] for _ in images]
        for per_image in self._each_class(one, progress):
            for index, parts in per_image.items():
                found[index] += parts
        return [Detections.concat(parts) for parts in found]

    def _run_windows(
        self, detector: _Loaded, rgb: np.ndarray, windows: list[Window], floor: float,
        progress: Callable[[], None] = _still, most: int | None = None, pixels: int | None = None,
    ) -> Detections:
        return Detections.concat(self._run_views(detector, [(rgb, w) for w in windows], floor, progress, most, pixels))

    def _run_views(
        self, detector: _Loaded, views: list[tuple[np.ndarray, Window]], floor: float,
        progress: Callable[[], None] = _still, most: int | None = None, pixels: int | None = None,
    ) -> list[Detections]:
        """Each (image, window)'s detections, in the views' order, the windows run in batches (``batches``) of
        at most ``most`` (default ``max_batch``) and ``pixels``: one network call each, ``progress`` after each."""
        found: list[Detections] = [Detections.empty()] * len(views)
        windows = [window for _, window in views]
        for run in batches(windows, detector.network.fixed_input, most or self.max_batch, pixels):
            results = detector.network.batch([windows[i].crop(views[i][0]) for i in run], floor)
            for i, (boxes, scores) in zip(run, results):
                found[i] = Detections.of(windows[i].to_source(boxes), scores, detector.object_class)
            progress()
        return found

    def detect_around(
        self, rgb: np.ndarray, boxes: dict[ObjectClass, np.ndarray], *, context: float, min_side: int = 64,
        scales: dict[ObjectClass, ScalePlan] | None = None, progress: Callable[[], None] | None = None,
    ) -> Detections:
        """Re-detect known objects: each class's detector on a window around each of its boxes (see
        ``roi_windows``), scores down to the review floor. A detector with a free input size takes the windows
        in batches of one size, however many, within ``BATCH_PIXELS``; a fixed-input one (plates) takes them
        packed several to a canvas of its input (pipeline/detect/mosaic.py), since alone each small crop would
        be letterboxed to a whole pass.

        Never dearer than a whole-frame pass: when the windows would cover more than ``ROI_MAX_AREA`` of the
        picture, or a fixed-input detector's number more than ``ROI_MAX_PACKED_WINDOWS``, the class gets its
        whole-image pass of ``scales`` (or its configured plan) instead. ``progress`` is called after each
        batch or canvas.
        """
        height, width = rgb.shape[:2]
        searched = [object_class for object_class, wanted in boxes.items() if len(wanted)]
        fed = self.views(rgb, searched)

        def one(detector: _Loaded, progress: Callable[[], None]) -> list[Detections]:
            view = fed[detector.object_class]
            floor = self.params.thresholds(detector.object_class).review_floor
            windows = roi_windows(height, width, boxes[detector.object_class], context, min_side)
            area = sum((w.x1 - w.x0) * (w.y1 - w.y0) for w in windows)
            packed_too_many = bool(detector.network.fixed_input) and len(windows) > ROI_MAX_PACKED_WINDOWS
            if packed_too_many or area > ROI_MAX_AREA * height * width:
                plan = (scales or {}).get(detector.object_class, detector.scales)
                windows = plan_windows(height, width, plan, detector.network.fixed_input)[:1]  # the whole image
            if detector.network.fixed_input:
                return self._around_packed(detector, view, windows, floor, progress)
            return [self._run_windows(detector, view, windows, floor, progress, len(windows), BATCH_PIXELS)]

        found = self._each_class(one, progress or _still, only=searched)
        return self.merged(Detections.concat([part for parts in found for part in parts]))

    @staticmethod
    def _around_packed(
        detector: _Loaded, rgb: np.ndarray, windows: list[Window], floor: float, progress: Callable[[], None],
    ) -> list[Detections]:
        side = detector.network.fixed_input or 0

        def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            result = detector.network(image, floor)
            progress()
            return result

        packed = detect_packed(rgb, windows, side, run)
        return [Detections.of(w.to_source(b), s, detector.object_class) for w, b, s in packed]

    def release_memory(self) -> None:
        """Hand the inference arenas' unused memory back (a large video's first pass leaves them at their
        peak; the second pass needs the memory for decoding and encoding instead)."""
        shrink = ort.RunOptions()
        shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        for detector in self._detectors:
            detector.network.run_once(shrink)

    def warm_up(self) -> None:
        """One pass on a blank image, so the first real file does not pay for lazy initialisation."""
        self.detect(np.zeros((64, 64, 3), dtype=np.uint8))


def at_floors(candidates: Detections, detector: DetectorParams,
              floors: Mapping[ObjectClass, float] | None = None) -> Detections:
    """The candidates at or above their class's floor: ``floors`` where it names the class, else the class's
    review floor."""
    cut = np.zeros(len(candidates), dtype=np.float32)
    for object_class in ObjectClass:
        floor = (floors or {}).get(object_class, detector.thresholds(object_class).review_floor)
        cut[candidates.classes == int(object_class)] = floor
    return candidates[candidates.scores >= cut]


def _load_one(
    spec: ModelSpec, object_class: ObjectClass, scales: ScalePlan, model_dir: Path, runtime: RuntimeParams,
    shared_batches: int = 0,
) -> _Loaded:
    source = find_source(spec.name)
    path = spec.path or model_dir / (source.file_name if source else f"{spec.name}.onnx")
    pinned = spec.sha256 or (source.sha256 if source and spec.path is None else None)
    kind = family(spec.family)
    # Unset, a default file (by name, or pinned by its checksum: an activated copy) runs as the catalogue says.
    # Integer kernels pay on the CPU; a GPU keeps its float path. Where int8 runs, fp16 does not apply: a half-
    # precision rewrite of a quantized graph is one onnxruntime refuses to load.
    catalogued = find_file(pinned) if pinned else None
    # The catalogue's int8 runs only where the CPU's integer kernels are exact; elsewhere float32 keeps the
    # scores (precision.exact_int8_kernels). A model set to int8 = true in its profile runs in int8 on any CPU.
    catalogue_int8 = catalogued is not None and catalogued.int8 and exact_int8_kernels()
    wanted = spec.int8 if spec.int8 is not None else catalogue_int8
    int8 = wanted and runtime.device == "cpu"

    def load(int8: bool) -> tuple[ort.InferenceSession, str]:
        return load_session(
            path, device=runtime.device, threads=runtime.threads, expected_sha256=pinned, prepare=kind.prepare,
            dynamic_input=not kind.fixed_input, fp16=runtime.fp16 and not int8, int8=int8, spin_wait=runtime.spin_wait,
            input_divisor=kind.input_divisor,
        )

    try:
        session, digest = load(int8)
    except QuantizationError:
        if spec.int8:  # asked for in the profile: refuse to start
            raise
        # The catalogue's choice, on an onnxruntime that cannot quantize with the shipped ranges: float32 is
        # as accurate and only slower, and the record says which ran.
        int8 = False
        session, digest = load(int8)
    # SharedBatches answers every call a family makes of its session.
    network = kind.build(cast(ort.InferenceSession, SharedBatches(session, shared_batches)) if shared_batches else session,
                         len(spec.classes))
    record = ModelRecord(
        name=spec.name, task=object_class.label, family=spec.family, sha256=digest, providers=session.get_providers(),
        precision="int8" if int8 else "fp16" if runtime.fp16 else "fp32",
    )
    return _Loaded(spec, network, object_class, scales, record)
