"""PSI, its no-drift expectation, Holm's correction and the two-proportion test."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.drift import stats


def test_psi_of_identical_histograms_is_zero_and_grows_with_a_shift():
    a = np.array([100, 200, 300, 200, 100])
    assert stats.psi(a, a) == pytest.approx(0.0, abs=1e-12)
    shifted = np.array([50, 100, 300, 300, 150])
    assert stats.psi(a, shifted) > 0.05


def test_psi_expectation_matches_the_mean_psi_of_samples_without_drift():
    rng = np.random.default_rng(0)
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.2, 0.1, 0.05])
    n, m = 2000, 300
    values = [stats.psi(rng.multinomial(n, p), rng.multinomial(m, p)) for _ in range(400)]
    expected = stats.psi_expected(rng.multinomial(n, p), rng.multinomial(m, p))
    assert expected == pytest.approx((len(p) - 1) * (1 / n + 1 / m))
    assert np.mean(values) == pytest.approx(expected, rel=0.15)
    # without the subtraction a 300-file window would look drifted at a 0.02 threshold on its own
    excess = [v - expected for v in values]
    assert abs(np.mean(excess)) < 0.005


def test_psi_of_an_empty_side_has_no_expectation():
    assert stats.psi_expected(np.array([0, 0]), np.array([3, 4])) == float("inf")


def test_threshold_follows_the_day_to_day_spread_but_never_below_the_floor():
    assert stats.psi_threshold([], 0.05) == 0.05
    assert stats.psi_threshold([0.0, 0.001, -0.001], 0.05) == 0.05
    wide = [0.0, 0.1, 0.2, 0.05]
    assert stats.psi_threshold(wide, 0.05) == pytest.approx(np.mean(wide) + 3 * np.std(wide, ddof=1))


def test_holm_rejects_in_order_and_stops_at_the_first_failure():
    rejected = stats.holm({"a": 0.001, "b": 0.003, "c": 0.006, "d": 0.5}, 0.01)
    assert rejected == {"a": True, "b": True, "c": False, "d": False}  # c: 0.006 > 0.01 / 2 stops the walk
    # Bonferroni alone would reject only a: 0.003 > 0.01 / 4, but Holm compares b with 0.01 / 3
    assert stats.holm({"a": 0.001, "b": 0.003, "c": 0.5, "d": 0.6}, 0.01)["b"]
    assert stats.holm({}, 0.05) == {}


def test_ks_tells_a_shift_from_the_same_distribution():
    rng = np.random.default_rng(1)
    a = rng.normal(size=2000)
    assert stats.ks_pvalue(a, rng.normal(size=300)) > 0.001
    assert stats.ks_pvalue(a, rng.normal(0.5, 1, size=300)) < 1e-6
    assert stats.ks_pvalue(a, np.array([1.0])) == 1.0


@pytest.mark.parametrize("shift, discrete", [(0.0, False), (0.2, False), (0.3, True)])
def test_ks_agrees_with_scipy(shift, discrete):
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=3000), rng.normal(shift, 1, size=400)
    if discrete:  # ties, as in detection counts
        a, b = np.round(a * 2), np.round(b * 2)
    reference = ks_2samp(a, b, method="asymp").pvalue
    # the limiting distribution is a little conservative in the far tail (larger p), never the other way round
    assert stats.ks_pvalue(a, b) == pytest.approx(reference, rel=0.2, abs=1e-6)
    assert stats.ks_pvalue(a, b) >= reference * 0.99


@pytest.mark.parametrize(
    "ref, win, drifted",
    [
        ((0, 0), (0, 0), False),  # nothing to compare
        ((150, 1000), (45, 300), False),  # same share
        ((150, 1000), (90, 300), True),  # doubled: significant and beyond the limit
        ((150000, 1000000), (16000, 100000), False),  # significant but only +1 point: below the absolute limit
    ],
)
def test_two_proportion(ref, win, drifted):
    result = stats.two_proportion(ref[0], ref[1], win[0], win[1], alpha=0.01, limit=0.05)
    assert result.drifted is drifted
