"""One day's verdict for one source: the window of recent files tested against the frozen reference.

Continuous features: PSI beyond what sampling explains and above the reference's own day-to-day spread, and a
two-sample KS test (Holm-corrected); both must agree. Proportions: a two-proportion test with a practical
limit. The verdict says which features drifted and in which direction; escalation is the monitor's job.
Imports only ``daemon.drift``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daemon.drift import stats
from daemon.drift.config import DriftConfig
from daemon.drift.schema import FEATURES
from daemon.drift.store import DriftStore


def column(matrix: np.ndarray, index: int) -> np.ndarray:
    values = matrix[:, index]
    return values[~np.isnan(values)]


def direction(ref: np.ndarray, win: np.ndarray) -> int:
    """+1 if the window lies above the reference, -1 below (medians, then means for coarse counts)."""
    if not ref.size or not win.size:
        return 0
    for a, b in ((np.median(win), np.median(ref)), (win.mean(), ref.mean())):
        if a != b:
            return 1 if a > b else -1
    return 0


def feature_hists(store: DriftStore, source: str, first: int, last: int, models: str) -> dict[str, np.ndarray]:
    """Input features over all files; detector features only over files from ``models``."""
    everything = store.histograms(source, first, last)
    detector = store.histograms(source, first, last, models)
    return {f.name: (detector if f.group == "detector" else everything)[f.name] for f in FEATURES}


def window_span(store: DriftStore, config: DriftConfig, source: str, day: int, ref: dict[str, Any]) -> tuple[int, int]:
    """(first day, files) of the window ending on ``day``: grown back over quiet days until it holds enough
    files, never into the reference and never longer than ``window_max_days``."""
    per_day = store.files_per_day(source)
    first, total = day, per_day.get(day, 0)
    while (total < config.window_min_files and first - 1 > ref["last_day"]
           and day - first + 1 < config.window_max_days):
        first -= 1
        total += per_day.get(first, 0)
    return first, total


def evaluate(store: DriftStore, config: DriftConfig, source: str, day: int, ref: dict[str, Any],
             ref_columns: dict[str, np.ndarray]) -> dict[str, Any]:
    """The day's verdict (``status`` "checked" with levels and signals), or why there is none."""
    if not store.files_per_day(source).get(day):
        return {"status": "no files"}  # no verdict: an older day's data must not count twice towards a state
    first, files = window_span(store, config, source, day, ref)
    base = {"window": [first, day], "files": files}
    if files < config.window_min_files:
        return {"status": "insufficient data", **base}
    models = ref["models"]
    detector_files = sum(store.files_per_day(source, models).get(d, 0) for d in range(first, day + 1))
    detector_ok = detector_files >= config.window_min_files
    window = feature_hists(store, source, first, day, models)
    rows, row_models = store.sample(source, first, day)
    samples = {"input": rows, "detector": rows[row_models == models]}
    tested = _continuous_tests(config, ref, ref_columns, window, samples, detector_ok)
    proportions = _proportion_tests(config, ref, window, detector_ok)

    by_name = {f.name: f for f in FEATURES}
    drifted = {n: v for n, v in {**tested, **proportions}.items() if v["drifted"]}
    input_signals = sorted(n for n in drifted if by_name[n].group == "input")
    detector_signals = sorted(n for n in drifted if by_name[n].group == "detector")
    risky = [n for n in detector_signals if by_name[n].risky * drifted[n]["direction"] > 0]
    detector_level = None if not detector_ok else ("alert" if risky else "warning" if detector_signals else "ok")
    return {
        "status": "checked", **base, "detector_files": detector_files,
        "detector_reference": "valid" if detector_ok else "no files from the reference's models",
        "features": tested, "proportions": proportions,
        "input_level": "warning" if input_signals else "ok", "input_signals": input_signals,
        "detector_level": detector_level, "detector_signals": risky or detector_signals,
    }


def _continuous_tests(config: DriftConfig, ref: dict[str, Any], ref_columns: dict[str, np.ndarray],
                      window: dict[str, np.ndarray], samples: dict[str, np.ndarray],
                      detector_ok: bool) -> dict[str, dict[str, Any]]:
    """PSI and KS per continuous feature; drifted when the PSI excess passes its threshold and KS rejects
    (Holm over all features tested). ``samples``: the window's rows per feature group."""
    tested: dict[str, dict[str, Any]] = {}
    for index, feature in enumerate(FEATURES):
        if feature.kind != "continuous" or (feature.group == "detector" and not detector_ok):
            continue
        ref_hist, win_hist = np.asarray(ref["hist"][feature.name]), window[feature.name]
        if not ref_hist.sum() or not win_hist.sum():
            continue
        ref_values = ref_columns[feature.name]
        win_values = column(samples[feature.group], index)
        tested[feature.name] = {
            "psi": stats.psi(ref_hist, win_hist), "expected": stats.psi_expected(ref_hist, win_hist),
            "threshold": ref["thresholds"][feature.name],
            "ks_p": stats.ks_pvalue(ref_values, win_values), "direction": direction(ref_values, win_values),
            "reference_median": float(np.median(ref_values)) if ref_values.size else None,
            "window_median": float(np.median(win_values)) if win_values.size else None,
        }
    rejected = stats.holm({k: v["ks_p"] for k, v in tested.items()}, config.ks_alpha)
    for name, item in tested.items():
        item["excess"] = item["psi"] - item["expected"]
        item["drifted"] = bool(item["excess"] > item["threshold"] and rejected[name])
    return tested


def _proportion_tests(config: DriftConfig, ref: dict[str, Any], window: dict[str, np.ndarray],
                      detector_ok: bool) -> dict[str, dict[str, Any]]:
    """A two-proportion test per share (Bonferroni over the shares tested), with the reference's limit."""
    proportions: dict[str, dict[str, Any]] = {}
    props = [f for f in FEATURES if f.kind == "proportion" and (f.group == "input" or detector_ok)]
    for feature in props:
        ref_hist, win_hist = np.asarray(ref["hist"][feature.name]), window[feature.name]
        test = stats.two_proportion(int(ref_hist[1]), int(ref_hist.sum()), int(win_hist[1]), int(win_hist.sum()),
                                    alpha=config.proportion_alpha / max(1, len(props)),
                                    limit=ref["proportion_limits"][feature.name])
        proportions[feature.name] = {"reference": test.reference, "window": test.window, "p": test.pvalue,
                                     "limit": ref["proportion_limits"][feature.name],
                                     "drifted": test.drifted, "direction": int(np.sign(test.window - test.reference))}
    return proportions
