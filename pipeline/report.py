"""Assembling the QC report (pipeline/qc.py): the parts every file shares, a photo's detections, a video's
summary, the review reasons and verdict, and the failure path that leaves nothing behind.

The processing code (``pipeline.run`` for photos, ``pipeline.video.process`` for videos) does the work and
hands its findings here; the wording of every review reason lives in this module only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline import __version__
from pipeline.detect import focus
from pipeline.detect.catalogue import sha256_of
from pipeline.detect.engine import Engine
from pipeline.edits import Edits
from pipeline.mask import confident_and_review, masked_selection, region_box
from pipeline.params import Params
from pipeline.qc import DetectionRecord, ErrorRecord, FileInfo, MediaType, QCReport, VideoSummary
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


def failed_report(name: str, path: Path, sha256: str | None, kind: str, message: str) -> QCReport:
    """A report for a file that failed before the pipeline could start one (no models, no parameters)."""
    size = path.stat().st_size if path.exists() else None
    return QCReport(
        veil_version=__version__,
        created_at=datetime.now(timezone.utc),
        input=FileInfo(name=name, sha256=sha256, size_bytes=size),
        disposition="failed",
        error=ErrorRecord(kind=kind, message=message),
    )


def output_info(
    name: str, path: Path, media_type: MediaType, fmt: str | None, width: int, height: int, notes: list[str] | None = None
) -> FileInfo:
    """The written output, as the report describes it (hashed after it is complete)."""
    return FileInfo(
        name=name, sha256=sha256_of(path), size_bytes=path.stat().st_size, media_type=media_type,
        format=fmt, width=width, height=height, notes=notes or [],
    )


def merged_input(sniffed: FileInfo, probed: FileInfo) -> FileInfo:
    """The input as sniffed (type, size, hash), with what decoding it learned (format, width, height)."""
    known = {k: v for k, v in probed.model_dump().items() if v not in (None, [], "unknown")}
    return sniffed.model_copy(update=known)


def review_band_reason(label: str, params: Params, *, count: int | None = None, frames: int | None = None) -> str:
    """The sentence for detections in a class's review band: how many (a photo) or on how many frames (a video)."""
    bounds = params.detector.thresholds(ObjectClass.from_label(label))
    action = "masked" if params.mask.mask_review_band else "NOT masked"
    many = "" if count is None else f"{count} "
    where = "" if frames is None else f" on {frames} frame(s)"
    return (
        f"{many}{label} detection(s) in the review band [{bounds.review_floor:.2f}, {bounds.threshold:.2f}){where}, "
        f"{action}"
    )


@dataclass(frozen=True)
class Finding:
    """Something uncertain about a file. ``leak_risk``: something may still be unmasked, so a person could
    change the outcome; otherwise (masked review-band detections) a person could only check for over-masking.
    ``kind`` names the signal, for counts (``veil eval``)."""

    kind: str
    text: str
    leak_risk: bool


def routed(finding: Finding, policy: str) -> bool:
    """Whether ``finding`` sends its file to review under the review ``policy``."""
    return policy == "strict" or (policy == "leak-risk" and finding.leak_risk)


def route(report: QCReport, findings: list[Finding], params: Params) -> None:
    """Split ``findings`` into review reasons and notes by the profile's review policy, and settle the verdict."""
    for finding in findings:
        target = report.review_reasons if routed(finding, params.review.policy) else report.review_notes
        target.append(finding.text)
    settle(report)


def review_band_finding(label: str, params: Params, *, count: int | None = None, frames: int | None = None) -> Finding:
    """Detections in a class's review band: a leak risk only when the profile leaves them unmasked."""
    masked = params.mask.mask_review_band
    return Finding(f"{label} review band, {'masked' if masked else 'NOT masked'}",
                   review_band_reason(label, params, count=count, frames=frames), leak_risk=not masked)


def photo_findings(detections: Detections, params: Params, unmasked_plate_finds: int, blur: focus.Blur) -> list[Finding]:
    """The uncertain findings of a photo: its detections (as they are masked), the plate-like regions the
    cross-check found that no mask touches, and whether it is out of focus or shaken (its ``blur``)."""
    _, review = confident_and_review(detections, params.detector)
    counts = {c: int((review & (detections.classes == int(c))).sum()) for c in ObjectClass}
    findings = [review_band_finding(c.label, params, count=n) for c, n in counts.items() if n]
    if unmasked_plate_finds:
        findings.append(Finding(
            "plate cross-check", f"a second plate detector (OpenCV's Haar cascade) found {unmasked_plate_finds} "
            f"plate-like region(s) that no mask touches: a plate may be unmasked", leak_risk=True,
        ))
    if params.review.out_of_focus and ObjectClass.LICENSE_PLATE.label in params.detector.classes \
            and blur.out_of_focus:
        findings.append(Finding(
            "out of focus", f"out of focus ({_blur_measures(blur)}): plates are missed more often on a blurred "
            f"picture, even sharpened: a plate may be unmasked", leak_risk=True,
        ))
    return findings


def _blur_measures(blur: focus.Blur) -> str:
    if blur.effect >= focus.BLURRED:
        return f"blur effect {blur.effect:.2f}, at least {focus.BLURRED:.2f}"
    across = "along the rows than down the columns" if blur.streak > 0 else "down the columns than along the rows"
    return f"shaken: {abs(blur.streak):.2f} blurrier {across}, at least {focus.STREAKED:.2f}"


def settle(report: QCReport) -> None:
    """The verdict of a file that was processed: any review reason sends it to review."""
    report.disposition = "review" if report.review_reasons else "done"


def record_detections(report: QCReport, detections: Detections, params: Params,
                      unmasked_plate_finds: np.ndarray | None, blur: focus.Blur) -> None:
    """Fill detections, per-class counts and review reasons (or notes) from one set of detections, the
    cross-check's plate-like finds that no mask touches, and the photo's ``blur`` (pipeline/detect/focus.py)."""
    confident, _ = confident_and_review(detections, params.detector)
    masked = masked_selection(detections, params)
    report.detections = [
        DetectionRecord(
            object_class=ObjectClass(int(c)).label, score=round(float(s), 4),
            box=tuple(round(float(v), 1) for v in box), band="confident" if conf else "review", masked=bool(m),
        )
        for box, s, c, conf, m in zip(detections.boxes, detections.scores, detections.classes, confident, masked)
    ]
    for object_class in ObjectClass:
        report.counts[object_class.label] = int((masked & (detections.classes == int(object_class))).sum())
    finds = np.zeros((0, 4)) if unmasked_plate_finds is None else unmasked_plate_finds
    report.plate_cross_check = [(round(float(x1), 1), round(float(y1), 1), round(float(x2), 1), round(float(y2), 1))
                                for x1, y1, x2, y2 in finds]
    route(report, photo_findings(detections, params, len(finds), blur), params)


def unmark_suppressed(report: QCReport, detections: Detections, params: Params, shape: tuple[int, ...], edits: Edits) -> None:
    """Detections an edit kept from being masked are recorded as not masked (and leave the masked counts)."""
    for record, box, value in zip(report.detections, detections.boxes, detections.classes):
        object_class = ObjectClass(int(value))
        region = MaskRegion(region_box(box, object_class, params.mask, shape), object_class, record.score)
        if record.masked and edits.suppresses(region, shape, 0):  # the same test as on the planned region
            record.masked = False
            report.counts[record.object_class] -= 1


def record_video(report: QCReport, summary: VideoSummary, params: Params) -> None:
    """Fill the video summary, per-class counts of tracked objects, review reasons and verdict."""
    report.video = summary.model_dump(mode="json", by_alias=True)
    report.counts = _track_counts(summary)
    report.review_reasons, report.review_notes = [], []
    route(report, _video_findings(summary, params), params)


def _track_counts(summary: VideoSummary) -> dict[str, int]:
    """Per class, the number of distinct tracked objects masked."""
    counts = {c.label: 0 for c in ObjectClass}
    for track in summary.tracks:
        counts[track.object_class] += 1
    return counts


def _video_findings(summary: VideoSummary, params: Params) -> list[Finding]:
    findings = []
    if summary.decode_warning_count:
        findings.append(Finding(
            "decode warnings", f"{summary.decode_warning_count} decode warning(s): {summary.frames_decoded} decoded frame(s) were all "
            f"masked, but frames may be missing or damaged", leak_risk=True,
        ))
    elif summary.frames_declared and summary.frames_declared != summary.frames_decoded:
        findings.append(Finding("frame count", f"the container declares {summary.frames_declared} frames, {summary.frames_decoded} "
                                f"decoded", leak_risk=True))
    for label, frames in summary.review_band_frames.items():
        findings.append(review_band_finding(label, params, frames=frames))
    for label, intervals in summary.light_blind_intervals.items():
        findings.append(Finding(
            "light plan blind", f"the light frame plan saw no {label} over {intervals} keyframe interval(s) where the deep pass "
            f"found one at both ends: tracks masked the frames between, but a brief leak there is possible",
            leak_risk=params.video.light_blind_review,
        ))
    if summary.tilted_intervals:
        findings.append(Finding(
            "leaning shot", f"the 45-degree face views saw faces the light frame plan did not at both ends of "
            f"{summary.tilted_intervals} keyframe interval(s): the shot leans, and leaning faces are found less surely",
            leak_risk=params.video.tilted_review,
        ))
    missed, found = summary.light_plan_missed, summary.keyframe_objects
    if missed and not summary.light_blind_intervals:
        findings.append(Finding(
            "light plan misses", f"the light frame plan missed {missed} of {found} object(s) the deep pass found on "
            f"{summary.keyframes} keyframe(s); the light plan's blind spots lasted no keyframe interval, and tracks masked them",
            leak_risk=False,
        ))
    return findings


def fail(report: QCReport, dst: Path, error: ErrorRecord) -> None:
    """Fail closed: remove the output and every companion, and record why."""
    for leftover in [dst, *(dst.with_name(name) for name in report.companions)]:
        leftover.unlink(missing_ok=True)
    report.output = None
    report.companions = []
    report.disposition = "failed"
    report.error = error
