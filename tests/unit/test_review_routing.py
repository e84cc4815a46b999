"""``veil eval``'s review figures: the router scored as a classifier of leaking files."""

from __future__ import annotations

import numpy as np

from pipeline.eval.images import _ImageResult, _review_routing
from pipeline.records import Detections
from pipeline.report import Finding

MASKED_BAND = Finding("face review band, masked", "1 face detection(s) in the review band, masked", leak_risk=False)
UNMASKED_BAND = Finding("face review band, NOT masked", "1 face detection(s) in the review band, NOT masked", leak_risk=True)


def image(number: int, coverage: list[float], findings: list[Finding]) -> _ImageResult:
    return _ImageResult(number, f"{number}.jpg", Detections.empty(), np.array(coverage), [], 0, 0, 100, findings)


def test_review_rate_and_leak_capture_follow_the_policy():
    results = [
        image(1, [1.0], []),  # clean, nothing uncertain
        image(2, [0.5], [UNMASKED_BAND]),  # leaks, and an unmasked band: caught under leak-risk
        image(3, [1.0, 0.2], [MASKED_BAND]),  # leaks, only a masked band: caught only under strict
        image(4, [1.0], [MASKED_BAND]),  # clean, a masked band
    ]
    risk = _review_routing(results, "leak-risk")
    assert (risk.routed, risk.leaking, risk.captured) == (1, 2, 1)
    assert risk.review_rate == 0.25 and risk.leak_capture == 0.5 and risk.review_rate_strict == 0.75
    assert risk.reasons == {"face review band, NOT masked": 1}
    assert risk.files == {"2.jpg": ["1 face detection(s) in the review band, NOT masked"]}  # which, and why
    strict = _review_routing(results, "strict")
    assert (strict.routed, strict.captured, strict.leak_capture) == (3, 2, 1.0)
    assert strict.reasons == {"face review band, NOT masked": 1, "face review band, masked": 2}
    assert sorted(strict.files) == ["2.jpg", "3.jpg", "4.jpg"]
    off = _review_routing(results, "off")
    assert (off.routed, off.review_rate, off.leak_capture) == (0, 0.0, 0.0) and off.files == {}


def test_a_set_without_leaks_has_no_capture_figure():
    assert _review_routing([image(1, [1.0], [MASKED_BAND])], "leak-risk").leak_capture is None
