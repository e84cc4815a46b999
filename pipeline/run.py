"""Process one file: sniff it, detect, mask, write the output, and account for it in a QC report.

``process_file`` never raises for a bad input or a failed step: it returns a report whose disposition is
"failed", and it guarantees that no output (nor companion file) is left behind then. Fail closed.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from pipeline import __version__
from pipeline.edits import EditCounts, Edits
from pipeline.detect.engine import Engine
from pipeline.errors import InputError, VeilError
from pipeline.features import image_features
from pipeline.mask import apply_masks, confident_and_review, masked_selection, plan_regions, region_box
from pipeline.media.image import load_image, output_format, save_image
from pipeline.media.sniff import sniff
from pipeline.detect.catalogue import sha256_of
from pipeline.params import Params
from pipeline.qc import DetectionRecord, ErrorRecord, FileInfo, QCReport
from pipeline.records import Detections, MaskRegion, ObjectClass


def start_report(name: str, params: Params, engine: Engine) -> QCReport:
    """A report with the parts every file shares: version, time, models, parameters."""
    return QCReport(
        veil_version=__version__,
        created_at=datetime.now(timezone.utc),
        input=FileInfo(name=name),
        models=engine.model_records,
        params=params.model_dump(mode="json"),
    )


def process_file(
    src: Path, dst: Path, params: Params, engine: Engine, *, name: str, edits: Edits | None = None
) -> QCReport:
    """``edits``: zones of the source and a reviewer's regions (pipeline/edits.py), applied with the masks."""
    started = time.monotonic()
    report = start_report(name, params, engine)
    try:
        report.input.media_type = sniff(src)
        report.input.size_bytes = src.stat().st_size
        report.input.sha256 = sha256_of(src)
        if report.input.media_type == "image":
            _process_image(src, dst, params, engine, report, edits or Edits())
        elif report.input.media_type == "video":
            from pipeline.video.process import process_video  # imported lazily: only videos need the video stack

            video_report = process_video(src, dst, params, engine, name=name, edits=edits)
            known = {k: v for k, v in video_report.input.model_dump().items() if v not in (None, [], "unknown")}
            video_report.input = report.input.model_copy(update=known)
            report = video_report
        else:
            raise InputError("unrecognised content: neither a supported image nor a video container")
    except VeilError as error:
        _fail(report, dst, ErrorRecord(kind=error.kind, message=str(error)))
    except Exception as error:  # noqa: BLE001 - a bug or an unforeseen library error: still fail closed, never crash
        _fail(report, dst, ErrorRecord(kind="error", message=f"{type(error).__name__}: {error}"))
    report.processing_seconds = round(time.monotonic() - started, 3)
    return report


def _process_image(src: Path, dst: Path, params: Params, engine: Engine, report: QCReport, edits: Edits) -> None:
    loaded = load_image(src, params.output.max_pixels)
    width, height = loaded.size
    report.input.format, report.input.width, report.input.height = loaded.format, width, height

    detections = engine.detect(loaded.rgb)
    features = image_features(src, loaded.rgb, detections, params, loaded.format)  # drift statistics, before masking
    regions = plan_regions(detections, params, loaded.pixels.shape)
    edit_counts = EditCounts()
    regions, _ = edits.filter_regions(regions, loaded.pixels.shape, 0, edit_counts)
    apply_masks(loaded.pixels, regions, params.mask)
    edits.apply_adds(loaded.pixels, 0, params.mask, edit_counts)

    target_format = output_format(report.input.name, loaded.format)
    notes = loaded.notes + save_image(loaded, dst, target_format, params.output)
    report.output = FileInfo(
        name=report.input.name, sha256=sha256_of(dst), size_bytes=dst.stat().st_size, media_type="image",
        format=target_format, width=width, height=height, notes=notes,
    )
    record_detections(report, detections, params)
    _unmark_suppressed(report, detections, params, loaded.pixels.shape, edits)
    report.edits = edits.summary(edit_counts)
    report.features = features


def record_detections(report: QCReport, detections: Detections, params: Params) -> None:
    """Fill detections, per-class counts and review reasons from one set of detections."""
    confident, review = confident_and_review(detections, params.detector)
    masked = masked_selection(detections, params)
    report.detections = [
        DetectionRecord(
            object_class=ObjectClass(int(c)).label, score=round(float(s), 4),
            box=tuple(round(float(v), 1) for v in box), band="confident" if conf else "review", masked=bool(m),
        )
        for box, s, c, conf, m in zip(detections.boxes, detections.scores, detections.classes, confident, masked)
    ]
    for object_class in ObjectClass:
        selected = detections.classes == int(object_class)
        report.counts[object_class.label] = int((masked & selected).sum())
        in_band = int((review & selected).sum())
        if in_band:
            bounds = params.detector.thresholds(object_class.label)
            action = "masked" if params.mask.mask_review_band else "NOT masked"
            report.review_reasons.append(
                f"{in_band} {object_class.label} detection(s) in the review band "
                f"[{bounds.review_floor:.2f}, {bounds.threshold:.2f}), {action}"
            )
    report.disposition = "review" if report.review_reasons else "done"


def _unmark_suppressed(report: QCReport, detections: Detections, params: Params, shape: tuple[int, ...], edits: Edits) -> None:
    """Detections an edit kept from being masked are recorded as not masked (and leave the masked counts)."""
    for record, box, value in zip(report.detections, detections.boxes, detections.classes):
        object_class = ObjectClass(int(value))
        region = MaskRegion(region_box(box, object_class, params.mask, shape), object_class, record.score)
        if record.masked and edits.suppresses(region, shape, 0):  # the same test as on the planned region
            record.masked = False
            report.counts[record.object_class] -= 1


def _fail(report: QCReport, dst: Path, error: ErrorRecord) -> None:
    for leftover in [dst, *(dst.with_name(name) for name in report.companions)]:
        leftover.unlink(missing_ok=True)
    report.output = None
    report.companions = []
    report.disposition = "failed"
    report.error = error
