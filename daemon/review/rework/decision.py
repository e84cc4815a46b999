"""The reviewer's decision on review-band detections a profile leaves unmasked (``mask_review_band = false``).

Approval publishes; publishing such a detection unmasked is a person's call, never a default. A document for
an item with any must say ``"unmasked_review_band": "mask"`` (the re-render masks the review band) or
``"publish"`` (it stays unmasked; the audit log records who decided, and how many). Without a decision the
approval is refused, before the re-render when the item shows some and after it when the re-render found some.
"""

from __future__ import annotations

from pipeline.params import Params
from pipeline.qc import QCReport

from daemon.review.rework.document import ReworkDocument, ReworkError


def unmasked_band(report: QCReport) -> int:
    """Review-band detections ``report`` left unmasked: a photo's count, a video's frames with one."""
    if report.video is not None:
        try:
            masked = Params.model_validate(report.params).mask.mask_review_band
        except ValueError:
            masked = False  # parameters that cannot be read back: assume the worst
        return 0 if masked else sum((report.video.get("review_band_frames") or {}).values())
    return sum(1 for d in report.detections if d.band == "review" and not d.masked)


def params_for_decision(params: Params, doc: ReworkDocument, item_report: QCReport) -> Params:
    """The re-render's parameters: with the review band masked when the reviewer said "mask"; ReworkError
    when the item has unmasked review-band detections and the document decides nothing."""
    if doc.unmasked_review_band == "mask":
        return params.model_copy(update={"mask": params.mask.model_copy(update={"mask_review_band": True})})
    if doc.unmasked_review_band is None:
        refuse_undecided(unmasked_band(item_report))
    return params


def refuse_undecided(count: int) -> None:
    if count:
        raise ReworkError(f"{count} review-band detection(s) would be published unmasked (the profile sets "
                          "mask_review_band = false): decide with unmasked_review_band \"mask\" or \"publish\"")
