"""Process one file: sniff it, detect, mask, write the output, and account for it in a QC report.

``process_file`` never raises for a bad input or a failed step: it returns a report whose disposition is
"failed", and it guarantees that no output (nor companion file) is left behind then. Fail closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.detect import focus
from pipeline.detect.cascade import cross_check_plates
from pipeline.detect.catalogue import sha256_of
from pipeline.detect.engine import Engine
from pipeline.edits import EditCounts, Edits
from pipeline.errors import InputError, VeilError
from pipeline.features import image_features
from pipeline.mask import apply_masks, coverage, plan_regions, unmasked
from pipeline.media.image import load_image, output_format, save_image
from pipeline.media.sniff import sniff
from pipeline.params import Params
from pipeline.qc import ErrorRecord, QCReport
from pipeline.records import MaskRegion, ObjectClass
from pipeline.report import fail, merged_input, output_info, record_detections, start_report, unmark_suppressed


def process_file(
    src: Path, dst: Path, params: Params, engine: Engine, *, name: str, edits: Edits | None = None,
    progress: Callable[[], None] | None = None,
) -> QCReport:
    """``edits``: zones of the source and a reviewer's regions (pipeline/edits.py), applied with the masks.
    ``progress``: called as the work moves (each video frame; each of a photo's detector windows, and before
    it is saved), so a caller's heartbeat means progress, not merely a live process."""
    started = time.monotonic()
    beat = progress or _still
    report = start_report(name, params, engine)
    try:
        report.input.media_type = sniff(src)
        report.input.size_bytes = src.stat().st_size
        report.input.sha256 = sha256_of(src)
        if report.input.media_type == "image":
            _process_image(src, dst, params, engine, report, edits or Edits(), beat)
        elif report.input.media_type == "video":
            from pipeline.video.process import process_video  # imported lazily: only videos need the video stack

            video_report = process_video(src, dst, params, engine, name=name, edits=edits, progress=progress)
            video_report.input = merged_input(report.input, video_report.input)
            report = video_report
        else:
            raise InputError("unrecognised content: neither a supported image nor a video container")
    except VeilError as error:
        fail(report, dst, ErrorRecord(kind=error.kind, message=str(error)))
    except Exception as error:  # noqa: BLE001 - a bug or an unforeseen library error: still fail closed, never crash
        fail(report, dst, ErrorRecord(kind="error", message=f"{type(error).__name__}: {error}"))
    report.processing_seconds = round(time.monotonic() - started, 3)
    return report


def _left_unmasked(finds: np.ndarray, regions: list[MaskRegion], edits: Edits, shape: tuple[int, ...], params: Params) -> np.ndarray:
    """The cross-check's ``finds`` that no applied mask (the regions, the edits' adds) touches and no ignore zone
    holds. The coverage map is drawn only when there is a find: most photos have none."""
    if not len(finds):
        return finds
    covered = coverage(shape, regions, params.mask)
    edits.cover_adds(covered, 0)
    left = [box for box in unmasked(finds, covered)
            if not edits.suppresses(MaskRegion(tuple(box), ObjectClass.LICENSE_PLATE, 0.0), shape, 0)]
    return np.array(left, dtype=np.float32).reshape(-1, 4)


def _still() -> None:
    """No one listens for progress."""


def _process_image(
    src: Path, dst: Path, params: Params, engine: Engine, report: QCReport, edits: Edits, beat: Callable[[], None]
) -> None:
    loaded = load_image(src, params.output.max_pixels)
    width, height = loaded.size
    report.input.format, report.input.width, report.input.height = loaded.format, width, height

    beat()
    detections = engine.detect(loaded.rgb, progress=beat)
    beat()
    features = image_features(src, loaded.rgb, detections, params, loaded.format)  # drift statistics, before masking
    plate_finds = cross_check_plates(loaded.rgb, params)  # before masking too: rgb may be the pixels masked
    beat()
    regions = plan_regions(detections, params, loaded.pixels.shape)
    edit_counts = EditCounts()
    regions, _ = edits.filter_regions(regions, loaded.pixels.shape, 0, edit_counts)
    apply_masks(loaded.pixels, regions, params.mask)
    edits.apply_adds(loaded.pixels, 0, params.mask, edit_counts)

    target_format = output_format(report.input.name, loaded.format)
    beat()
    notes = loaded.notes + save_image(loaded, dst, target_format, params.output)
    report.output = output_info(report.input.name, dst, "image", target_format, width, height, notes)
    record_detections(report, detections, params, _left_unmasked(plate_finds, regions, edits, loaded.pixels.shape, params),
                      focus.Blur.recorded(features["input"]["blur_effect"], features["input"]["blur_streak"]))
    unmark_suppressed(report, detections, params, loaded.pixels.shape, edits)
    report.edits = edits.summary(edit_counts)
    report.features = features
