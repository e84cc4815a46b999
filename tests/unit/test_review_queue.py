"""The review station's queue: sorted by time or by reason, a page at a time (daemon/review/queue.py)."""

from __future__ import annotations

import pytest

from daemon.review.queue import SPOT_CHECK, queue_page, reason_kind


def row(name: str, created_at: str, *reasons: str) -> dict:
    return {"name": name, "created_at": created_at, "reasons": list(reasons)}


BAND = "{} face detection(s) in the review band [0.20, 0.40), NOT masked"
ROWS = [
    row("a", "2026-12-01T10:00:00", BAND.format(3)),
    row("b", "2026-12-01T12:00:00", "2 decode warning(s): frames may be missing"),
    row("c", "2026-12-01T11:00:00", BAND.format(1)),
    row("d", "2026-12-01T09:00:00"),  # a spot check
]


def names(page: dict) -> list[str]:
    return [item["name"] for item in page["items"]]


def test_newest_first_by_default_and_oldest_on_request():
    assert names(queue_page(ROWS, {})) == ["b", "c", "a", "d"]
    assert names(queue_page(ROWS, {"sort": "oldest"})) == ["d", "a", "c", "b"]


def test_by_reason_groups_one_kind_whatever_its_counts_newest_first_within():
    page = queue_page(ROWS, {"sort": "reason"})
    assert names(page) == ["b", "c", "a", "d"]  # "# decode ...", then "# face ..." (c newer than a), then spot checks
    assert page["reasons"] == {reason_kind([BAND.format(3)]): 2, reason_kind(["2 decode warning(s): frames may be missing"]): 1,
                               SPOT_CHECK: 1}
    assert reason_kind([BAND.format(3)]) == reason_kind([BAND.format(17)])


def test_pages_split_the_queue_and_count_it_whole():
    first = queue_page(ROWS, {"per_page": "3"})
    second = queue_page(ROWS, {"per_page": "3", "page": "2"})
    assert names(first) + names(second) == ["b", "c", "a", "d"]
    assert (first["total"], first["pages"], second["page"]) == (4, 2, 2)
    assert queue_page([], {})["pages"] == 1 and queue_page(ROWS, {"page": "9"})["items"] == []


@pytest.mark.parametrize("query", [{"sort": "name"}, {"page": "0"}, {"page": "x"}, {"per_page": "0"}, {"per_page": "201"}])
def test_a_bad_query_is_a_value_error(query):
    with pytest.raises(ValueError):
        queue_page(ROWS, query)
