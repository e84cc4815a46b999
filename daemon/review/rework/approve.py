"""Approval: re-render the kept original with the reviewer's edits, publish, clean up, audit."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pipeline.detect.catalogue import default_model_dir
from pipeline.params import Params

from daemon import log
from daemon.audit.log import AuditLog
from daemon.config.settings import FolderSettings, Settings
from daemon.fsutil import fsync_dir
from daemon.intake.zones import zone_edits
from daemon.models.registry import Registry, RegistryError, with_active_models
from daemon.review.rework.audit import audit_approval
from daemon.review.rework.decision import params_for_decision, refuse_undecided, unmasked_band
from daemon.review.rework.document import ReworkDocument, ReworkError
from daemon.review.rework.edits import ReviewCounts, to_edits
from daemon.review.rework.items import Item, find_item, find_original
from daemon.review.rework.publish import publish, remove_from_review

if TYPE_CHECKING:
    from pipeline.detect.engine import Engine

_log = log.get("veil.rework")


def service_params(settings: Settings, folder: FolderSettings) -> Params:
    """The folder's profile with the models the service runs now (``veil models activate``), so that a
    re-render detects with the same models as the first render would today."""
    model_dir = settings.service.model_dir or default_model_dir()
    try:
        return with_active_models(settings.params_for(folder), Registry(model_dir).selection(), model_dir)
    except RegistryError as exc:
        raise ReworkError(f"active models: {exc}") from None


@dataclass(frozen=True)
class Approved:
    name: str  # the published name in output/
    disposition: str
    counts: ReviewCounts
    original_deleted: bool
    unmasked_published: int = 0  # review-band detections published unmasked by the reviewer's decision


def frame_count(item: Item) -> int | None:
    """The item's frames (None: a photo), for bounding key boxes."""
    if item.output_info.media_type != "video":
        return None
    video = item.report.video or {}
    return int(video.get("frames_written") or video.get("frames_decoded") or 0)


def approve(folder: FolderSettings, params: Params, engine_for: Callable[[Params], Engine], doc: ReworkDocument, *,
            audit: AuditLog | None, source: str, audit_names: bool = False) -> Approved:
    """Re-render, publish, clean up, audit. Raises ReworkError; leaves the item in place when it fails."""
    item = find_item(folder, doc.id)
    rendering = params_for_decision(params, doc, item.report)  # the review band masked if the reviewer said so
    edits, counts = to_edits(doc, allow_unmask=rendering.review.allow_false_positive_unmask, frame_count=frame_count(item))
    original = find_original(folder, item)
    edits = zone_edits(folder).merged(edits)  # the source's camera zones first, as the service applies them
    from pipeline.run import process_file

    with tempfile.TemporaryDirectory(prefix=".veil-rework-", dir=folder.output) as staging:
        staged = Path(staging) / Path(item.name).name
        report = process_file(original, staged, rendering, engine_for(rendering), name=item.report.input.name, edits=edits)
        if report.disposition == "failed" or report.input.sha256 != item.id:
            why = report.error.message if report.error else "the original changed"
            raise ReworkError(f"re-render failed: {why}")
        unmasked = unmasked_band(report)
        if doc.unmasked_review_band is None:
            refuse_undecided(unmasked)
        report = report.model_copy(update={
            "disposition": "done",
            "approval": {"reviewer": doc.reviewer, "approved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "source": source, "id": item.id, "was": item.place,
                         "false_positives_unmasked": counts.unmask_allowed and counts.false_positives > 0,
                         "unmasked_review_band": doc.unmasked_review_band, "review_band_left_unmasked": unmasked},
        })
        name = publish(item, folder, staged, report)
    if item.place != "output":
        remove_from_review(item)
    deleted = False
    if not folder.keep_originals_after_review:
        original.unlink(missing_ok=True)
        fsync_dir(original.parent)
        deleted = True
    if audit is not None:
        try:
            audit_approval(audit, folder, item, doc, counts, name if audit_names else None, source, deleted, unmasked)
        except OSError as exc:  # published already: say so in the log rather than report a failed approval
            _log.error("audit_write_failed", event="review.approve", item=item.id[:12], error=exc.strerror or str(exc))
    return Approved(name, "done", counts, deleted, unmasked)
