"""Drift statistics and significance tests, checked against SciPy on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, chi2_contingency, ks_2samp, wasserstein_distance

from monitor.quality.drift import (
    ProfileError,
    Thresholds,
    adjust_p_values,
    categorical_profile,
    compare,
    histogram_profile,
    numeric_profile,
)
from monitor.quality.significance import drop_significance, two_proportion_p, wilson_bounds


@pytest.mark.parametrize(("p", "n"), [(0.87, 10_000), (0.5, 40), (0.99, 300), (0.02, 1000)])
def test_wilson_matches_scipy(p: float, n: int) -> None:
    k = round(p * n)
    expected = binomtest(k, n).proportion_ci(0.98, method="wilson")
    low, high = wilson_bounds(k / n, n, 0.98)
    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_two_proportion_matches_chi_square_on_the_2x2_table() -> None:
    table = [[9000, 1000], [8700, 1300]]  # baseline 0.90 on 10k, current 0.87 on 10k
    chi = chi2_contingency(table, correction=False).pvalue
    assert two_proportion_p(0.87, 10_000, 0.90, 10_000, "down") == pytest.approx(chi / 2, rel=1e-6)
    assert two_proportion_p(0.93, 10_000, 0.90, 10_000, "down") > 0.99, "a rise is no evidence of a drop"


def test_drop_significance_depends_on_n() -> None:
    big = drop_significance(0.88, 20_000, 0.90, 20_000, "down", 0.01)
    small = drop_significance(0.88, 200, 0.90, 200, "down", 0.01)
    assert big.test == "two_proportion" and big.significant
    assert not small.significant and small.p_value is not None and small.p_value > 0.1
    fixed = drop_significance(0.88, 20_000, 0.90, None, "down", 0.01)
    assert fixed.test == "wilson" and fixed.significant and fixed.bound is not None and fixed.bound < 0.90
    assert drop_significance(0.88, None, 0.90, None, "down", 0.01).test == "none"
    assert drop_significance(3.5, 100, 2.0, 100, "up", 0.01).test == "none", "a loss is not a proportion"


@pytest.fixture(scope="module")
def columns() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((30_000, 6))
    cur = rng.standard_normal((30_000, 6))
    cur[:, 2:4] += 0.02
    cur[:, 4:] += 0.25
    return ref, cur


def test_numeric_statistics_match_scipy(columns: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = columns
    for j in range(ref.shape[1]):
        drift = compare(numeric_profile(ref[:, j], bins=10), numeric_profile(cur[:, j]), cur[:, j])
        w = wasserstein_distance(ref[:, j], cur[:, j]) / ref[:, j].std()
        assert drift.wasserstein == pytest.approx(w, abs=0.002)
        # D is read off 1,000-point quantile functions, so it is within ~1e-3 of the exact statistic.
        assert drift.p_value == pytest.approx(ks_2samp(ref[:, j], cur[:, j]).pvalue, abs=0.06)


def test_effect_sizes_flag_only_real_shifts(columns: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = columns
    flagged = [
        bool(
            Thresholds().exceeded(
                compare(numeric_profile(ref[:, j], bins=10), numeric_profile(cur[:, j]), cur[:, j]).statistics()
            )
        )
        for j in range(ref.shape[1])
    ]
    assert flagged == [False, False, False, False, True, True]


def test_histogram_profile_agrees_with_the_raw_sample(columns: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = columns
    edges = np.linspace(-5, 5, 201)
    counts, _ = np.histogram(cur[:, 5], bins=edges)
    reference = numeric_profile(ref[:, 5], bins=10)
    from_hist = compare(reference, histogram_profile(edges.tolist(), counts.tolist()))
    from_raw = compare(reference, numeric_profile(cur[:, 5]), cur[:, 5])
    assert from_hist.wasserstein == pytest.approx(from_raw.wasserstein, abs=0.01)
    assert from_hist.psi == pytest.approx(from_raw.psi, abs=0.005)
    assert from_hist.n == 30_000
    hist_ref = histogram_profile(edges.tolist(), np.histogram(ref[:, 0], bins=edges)[0].tolist(), bins=10)
    assert compare(hist_ref, numeric_profile(ref[:, 0])).wasserstein < 0.02


def test_categorical_statistics() -> None:
    ref = categorical_profile({"basic": 700, "pro": 250, "team": 50})
    same = categorical_profile({"basic": 690, "pro": 260, "team": 50})
    moved = categorical_profile({"basic": 400, "pro": 450, "team": 100, "enterprise": 50})
    assert compare(ref, same).jensen_shannon < 0.05
    drift = compare(ref, moved)
    assert drift.jensen_shannon > 0.1 and drift.wasserstein is None
    table = [[700, 0, 250, 50], [400, 50, 450, 100]]  # categories in order: basic, enterprise, pro, team
    assert drift.p_value == pytest.approx(chi2_contingency(table).pvalue)


def test_bad_data_is_named() -> None:
    with pytest.raises(ProfileError, match="finite"):
        numeric_profile(np.array([1.0, np.nan]))
    with pytest.raises(ProfileError, match="strictly increasing"):
        histogram_profile([0, 1, 1], [1, 2])
    with pytest.raises(ProfileError, match="len\\(edges\\)"):
        histogram_profile([0, 1], [1, 2])
    with pytest.raises(ProfileError, match="numeric but the current data is categorical|reference is numeric"):
        compare(numeric_profile(np.arange(10.0), bins=4), categorical_profile({"a": 1}))


def test_p_value_corrections() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    assert adjust_p_values(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 1.0])
    assert adjust_p_values(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert adjust_p_values(p, "benjamini_hochberg") == pytest.approx([0.04, 0.0533333, 0.0533333, 0.5])
