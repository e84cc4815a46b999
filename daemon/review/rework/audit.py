"""The audit events of an approval: ids, counts and the reviewer only (file names where allowed)."""

from __future__ import annotations

from typing import Any

from daemon.audit.log import AuditLog
from daemon.config.settings import FolderSettings
from daemon.review.rework.document import ReworkDocument
from daemon.review.rework.edits import ReviewCounts
from daemon.review.rework.items import Item


def audit_approval(audit: AuditLog, folder: FolderSettings, item: Item, doc: ReworkDocument, counts: ReviewCounts,
           name: str | None, source: str, deleted: bool, unmasked: int = 0) -> None:
    common: dict[str, Any] = {"folder": folder.name, "item": item.id, "source": source}  # JSON fields of each event
    if name is not None:  # file names only where the configuration allows them (service.log_file_names)
        common["name"] = name
    if counts.regions:
        audit.append("review.manual_edit", actor=doc.reviewer, regions=counts.regions, **common)
    if counts.false_positives:
        audit.append("review.false_positive", actor=doc.reviewer, false_positives=counts.false_positives,
                     unmasked=counts.unmask_allowed, **common)
    if doc.unmasked_review_band is not None:  # the reviewer's decision on the review band, whichever it was
        audit.append("review.unmasked_review_band", actor=doc.reviewer, decision=doc.unmasked_review_band,
                     left_unmasked=unmasked, **common)
    audit.append("review.approve", actor=doc.reviewer, was=item.place, original_deleted=deleted, **common)
