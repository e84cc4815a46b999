"""The review queue as the station lists it: sorted by time or by reason, one page at a time, with how many
items each kind of reason brought."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

SORTS = ("newest", "oldest", "reason")
PER_PAGE = 50
PER_PAGE_MAX = 200
SPOT_CHECK = "spot check: a sample of clean results"


def reason_kind(reasons: list[str]) -> str:
    """The kind of reason that brought an item: its first reason with the numbers left out, so that "3 face
    detection(s) ..." and "1 face detection(s) ..." sort and count together."""
    return re.sub(r"\d+(?:\.\d+)?", "#", reasons[0]) if reasons else SPOT_CHECK


def queue_page(rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """One page of ``rows`` (the station's item summaries) by the query's ``sort``, ``page`` (from 1) and
    ``per_page``; a bad value raises ValueError (a 400)."""
    sort = query.get("sort", "newest")
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    page, per_page = int(query.get("page", "1")), int(query.get("per_page", str(PER_PAGE)))
    if page < 1 or not 1 <= per_page <= PER_PAGE_MAX:
        raise ValueError(f"page must be at least 1 and per_page 1-{PER_PAGE_MAX}")
    ordered = sorted(rows, key=lambda row: row["created_at"], reverse=sort != "oldest")
    if sort == "reason":
        ordered.sort(key=lambda row: reason_kind(row["reasons"]))  # stable: newest first within a kind
    pages = max(1, math.ceil(len(ordered) / per_page))
    start = (page - 1) * per_page
    return {"items": ordered[start:start + per_page], "total": len(ordered), "page": page, "pages": pages,
            "per_page": per_page, "sort": sort, "reasons": dict(Counter(reason_kind(r["reasons"]) for r in ordered))}
