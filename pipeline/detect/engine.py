"""The detection engine: loaded models plus the scale plan that feeds them. Built once per worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.detect.base import Detector
from pipeline.detect.catalogue import default_model_dir, find_source
from pipeline.detect.families import family
from pipeline.detect.nms import merge
from pipeline.detect.onnx import load_session
from pipeline.detect.windows import Window, plan_windows, roi_windows
from pipeline.errors import ModelError
from pipeline.params import DetectorParams, ModelSpec, RuntimeParams, ScalePlan
from pipeline.qc import ModelRecord
from pipeline.records import Detections, ObjectClass


@dataclass(frozen=True)
class _Loaded:
    spec: ModelSpec
    network: Detector
    object_class: ObjectClass
    scales: ScalePlan
    record: ModelRecord


# Re-detection falls back to one whole-image pass beyond these: the windows' pixels are its cost, and
# overlapping windows search the same pixels twice. Windows of one size run as one batch.
ROI_MAX_WINDOWS = 64
ROI_MAX_AREA = 0.5  # share of the picture
# A batch holds at most this many pixels (a 1080p frame), so its activations are no larger than a
# whole-frame pass's: on 4K frames the windows are large and an unbounded batch grew memory by 400 MB.
ROI_BATCH_PIXELS = 1920 * 1088


class Engine:
    def __init__(self, detectors: list[_Loaded], params: DetectorParams):
        self._detectors = detectors
        self.params = params

    @classmethod
    def load(cls, detector: DetectorParams, runtime: RuntimeParams = RuntimeParams()) -> "Engine":
        model_dir = runtime.model_dir or default_model_dir()
        loaded = []
        for label in detector.classes:
            object_class = ObjectClass.from_label(label)
            settings = detector.for_class(object_class)
            if label not in settings.model.classes:
                raise ModelError(f"model {settings.model.name!r} does not declare class {label!r} "
                                 f"(declares {settings.model.classes})")
            loaded.append(_load_one(settings.model, object_class, settings.scales, model_dir, runtime))
        return cls(loaded, detector)

    @property
    def model_records(self) -> list[ModelRecord]:
        return [d.record for d in self._detectors]

    def detect(
        self, rgb: np.ndarray, min_score: float | None = None, scales: dict[ObjectClass, ScalePlan] | None = None,
        only: frozenset[ObjectClass] | None = None,
    ) -> Detections:
        """All configured classes (or those in ``only``) in an HxWx3 uint8 RGB image, boxes in its pixels.

        Scores go down to each class's review floor, or to ``min_score`` when given (evaluation).
        ``scales`` replaces the configured scale plan of a class (video frames use a lighter one).
        Every detector runs on its own windows whatever the others found: no class is ever skipped because
        another one was seen.
        """
        return self.merged(self.candidates(rgb, min_score, scales, only))

    def candidates(
        self, rgb: np.ndarray, min_score: float | None = None, scales: dict[ObjectClass, ScalePlan] | None = None,
        only: frozenset[ObjectClass] | None = None,
    ) -> Detections:
        """``detect`` before the cross-window merge: every window's raw boxes."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
        found = [
            self._detect_one(detector, rgb, min_score, (scales or {}).get(detector.object_class, detector.scales))
            for detector in self._detectors
            if only is None or detector.object_class in only
        ]
        return Detections.concat(found)

    def merged(self, candidates: Detections) -> Detections:
        return merge(candidates, self.params.nms_iou)

    def at_review_floors(self, candidates: Detections) -> Detections:
        """The candidates that ``detect`` at the production floors would have seen. The networks only filter
        by score, so candidates gathered at a lower evaluation floor and cut here, then merged, are exactly
        what the shipped path masks."""
        floors = np.zeros(len(candidates), dtype=np.float32)
        for object_class in ObjectClass:
            floors[candidates.classes == int(object_class)] = self.params.thresholds(object_class).review_floor
        return candidates[candidates.scores >= floors]

    def _detect_one(
        self, detector: _Loaded, rgb: np.ndarray, min_score: float | None, plan: ScalePlan
    ) -> Detections:
        """One detector over every window of its plan (its own function, so nothing leaks between classes)."""
        floor = self.params.thresholds(detector.object_class).review_floor if min_score is None else min_score
        height, width = rgb.shape[:2]
        found = []
        for window in plan_windows(height, width, plan, detector.network.fixed_input):
            boxes, scores = detector.network(window.crop(rgb), floor)
            found.append(Detections.of(window.to_source(boxes), scores, detector.object_class))
        return Detections.concat(found)

    def detect_around(
        self, rgb: np.ndarray, boxes: dict[ObjectClass, np.ndarray], *, context: float, min_side: int = 64,
        scales: dict[ObjectClass, ScalePlan] | None = None, progress: Callable[[], None] | None = None,
    ) -> Detections:
        """Re-detect known objects: each class's detector on a window around each of its boxes (see
        ``roi_windows``), scores down to the review floor. Only detectors with a free input size take part:
        a fixed-input one would letterbox every small crop to its full input, costing a whole frame each.

        Never dearer than a whole-frame pass: when the windows would cover more than ``ROI_MAX_AREA`` of the
        picture or number more than ``ROI_MAX_WINDOWS`` (a crowd), the class gets its whole-image pass of
        ``scales`` (or its configured plan) instead. ``progress`` is called after each batch of windows.
        """
        height, width = rgb.shape[:2]
        found = []
        for detector in self._detectors:
            wanted = boxes.get(detector.object_class)
            if wanted is None or not len(wanted) or detector.network.fixed_input:
                continue
            floor = self.params.thresholds(detector.object_class).review_floor
            windows = roi_windows(height, width, wanted, context, min_side)
            area = sum((w.x1 - w.x0) * (w.y1 - w.y0) for w in windows)
            if len(windows) > ROI_MAX_WINDOWS or area > ROI_MAX_AREA * height * width:
                plan = (scales or {}).get(detector.object_class, detector.scales)
                windows = plan_windows(height, width, plan, detector.network.fixed_input)[:1]  # the whole image
            by_size: dict[tuple[int, int], list[Window]] = {}
            for window in windows:
                by_size.setdefault(window.crop_size, []).append(window)
            for size, same_size in by_size.items():
                per_batch = max(1, ROI_BATCH_PIXELS // (size[0] * size[1]))
                batches = [same_size[i : i + per_batch] for i in range(0, len(same_size), per_batch)]
                for batch in batches:
                    results = detector.network.batch([w.crop(rgb) for w in batch], floor)
                    found += [
                        Detections.of(w.to_source(b), s, detector.object_class) for w, (b, s) in zip(batch, results)
                    ]
                    if progress:
                        progress()
        return self.merged(Detections.concat(found))

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


def _load_one(
    spec: ModelSpec, object_class: ObjectClass, scales: ScalePlan, model_dir: Path, runtime: RuntimeParams
) -> _Loaded:
    source = find_source(spec.name)
    path = spec.path or model_dir / (source.file_name if source else f"{spec.name}.onnx")
    pinned = spec.sha256 or (source.sha256 if source and spec.path is None else None)
    kind = family(spec.family)
    session, digest = load_session(
        path, device=runtime.device, threads=runtime.threads, expected_sha256=pinned, prepare=kind.prepare,
        dynamic_input=not kind.fixed_input, fp16=runtime.fp16,
    )
    network = kind.build(session, len(spec.classes))
    record = ModelRecord(
        name=spec.name, task=object_class.label, family=spec.family, sha256=digest, providers=session.get_providers()
    )
    return _Loaded(spec, network, object_class, scales, record)
