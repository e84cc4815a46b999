"""The tests behind drift decisions: PSI with its expected value under no drift, KS with a multiple-testing
correction, and a two-proportion test. numpy and scipy.stats only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

_EPS = 0.5  # pseudo-count per bin: PSI stays finite when a bin is empty on one side


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two histograms of counts over the same bins."""
    e = np.asarray(expected, dtype=np.float64) + _EPS
    a = np.asarray(actual, dtype=np.float64) + _EPS
    p, q = e / e.sum(), a / a.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def psi_expected(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI's expected value when both histograms come from one distribution.

    PSI is the symmetrised KL divergence; for multinomial samples of sizes n and m over k occupied bins it is
    approximately (1/n + 1/m) times a chi-square with k - 1 degrees of freedom, so its mean is
    (k - 1)(1/n + 1/m). Small windows have a large PSI by chance alone: this is what is subtracted.
    """
    e, a = np.asarray(expected), np.asarray(actual)
    n, m = e.sum(), a.sum()
    if n == 0 or m == 0:
        return float("inf")
    k = int(np.count_nonzero((e + a) > 0))
    return max(k - 1, 0) * (1.0 / n + 1.0 / m)


def excess_psi(expected: np.ndarray, actual: np.ndarray) -> float:
    return psi(expected, actual) - psi_expected(expected, actual)


def psi_threshold(daily_excess: list[float], floor: float) -> float:
    """The drift threshold for one feature from the reference's own day-to-day variation."""
    values = np.asarray(daily_excess, dtype=np.float64)
    if values.size < 2:
        return floor
    return float(max(floor, values.mean() + 3.0 * values.std(ddof=1)))


def ks_pvalue(reference: np.ndarray, window: np.ndarray) -> float:
    """Two-sided two-sample KS test, asymptotic p-value (Kolmogorov's limit; samples here are hundreds).

    The same statistic as ``scipy.stats.ks_2samp``, without its per-call overhead: a daily check runs
    one test per monitored number and source.
    """
    n, m = len(reference), len(window)
    if n < 2 or m < 2:
        return 1.0
    a, b = np.sort(reference), np.sort(window)
    pooled = np.concatenate([a, b])
    d = np.max(np.abs(np.searchsorted(a, pooled, side="right") / n - np.searchsorted(b, pooled, side="right") / m))
    return float(special.kolmogorov(np.sqrt(n * m / (n + m)) * d))


def holm(pvalues: dict[str, float], alpha: float) -> dict[str, bool]:
    """Holm-Bonferroni: which hypotheses are rejected at family-wise level ``alpha``."""
    order = sorted(pvalues, key=lambda name: pvalues[name])
    rejected: dict[str, bool] = {name: False for name in pvalues}
    for rank, name in enumerate(order):
        if pvalues[name] > alpha / (len(order) - rank):
            break
        rejected[name] = True
    return rejected


@dataclass(frozen=True)
class ProportionTest:
    reference: float
    window: float
    pvalue: float
    drifted: bool  # significant and the absolute change is beyond the limit


def two_proportion(ref_hits: int, ref_n: int, win_hits: int, win_n: int, *, alpha: float,
                   limit: float) -> ProportionTest:
    """Pooled two-proportion z-test, plus an absolute limit so that a tiny but significant change is no drift."""
    p1 = ref_hits / ref_n if ref_n else 0.0
    p2 = win_hits / win_n if win_n else 0.0
    if not ref_n or not win_n:
        return ProportionTest(p1, p2, 1.0, False)
    pooled = (ref_hits + win_hits) / (ref_n + win_n)
    se = np.sqrt(pooled * (1 - pooled) * (1 / ref_n + 1 / win_n))
    pvalue = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(p2 - p1) / se))
    return ProportionTest(p1, p2, pvalue, pvalue < alpha and abs(p2 - p1) > limit)
