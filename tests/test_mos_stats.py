"""MOS statistics against hand computations and published values (esrgan.mos.report)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from esrgan.mos.report import (
    ScoredVote,
    analyse_votes,
    calibration_check,
    holm_adjust,
    krippendorff_alpha,
    mean_ci,
    method_mos,
    paired_scores,
    wilcoxon_test,
)

# --------------------------------------------------------------------------------------------------
# MOS and its t interval


def test_mean_ci_by_hand():
    # 1..5: mean 3, s² = 10/4 = 2.5, se = sqrt(2.5/5) = sqrt(0.5); t(0.975, 4) = 2.7764451051977987 (tables:
    # 2.776). Half-width = 2.7764451 * 0.70710678 = 1.96324...
    mean, low, high = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(0.5)
    assert mean == 3.0
    assert low == pytest.approx(3 - half, abs=1e-12)
    assert high == pytest.approx(3 + half, abs=1e-12)
    assert half == pytest.approx(1.963243, abs=1e-6)


def test_mean_ci_degenerate():
    assert mean_ci([4])[0] == 4 and math.isnan(mean_ci([4])[1])
    assert all(math.isnan(v) for v in mean_ci([]))
    # No spread: the interval has width 0.
    assert mean_ci([3, 3, 3]) == (3.0, 3.0, 3.0)


def _table(rows):
    """(rater, image, method, score) tuples → votes."""
    return [ScoredVote(*row) for row in rows]


TINY = _table(
    [
        # rater, image, method, score — 2 raters × 2 images × 3 methods
        ("ann", "a", "X", 4), ("ann", "a", "Y", 2), ("ann", "a", "hr", 5),
        ("ann", "b", "X", 5), ("ann", "b", "Y", 3), ("ann", "b", "hr", 5),
        ("bob", "a", "X", 3), ("bob", "a", "Y", 3), ("bob", "a", "hr", 4),
        ("bob", "b", "X", 4), ("bob", "b", "Y", 1), ("bob", "b", "hr", 5),
    ]
)  # fmt: skip


def test_method_mos_on_a_tiny_table():
    by = {m.method: m for m in method_mos(TINY, ["X", "Y", "hr"])}
    # X: 4, 5, 3, 4 → mean 4, s² = (0+1+1+0)/3 = 2/3; t(0.975, 3) = 3.182446305284263.
    x = by["X"]
    assert (x.n, x.mean) == (4, 4.0)
    assert x.std == pytest.approx(math.sqrt(2 / 3))
    half = 3.182446305284263 * math.sqrt(2 / 3) / 2
    assert (x.ci_low, x.ci_high) == pytest.approx((4 - half, 4 + half))
    assert x.counts == (0, 0, 1, 2, 1)
    # Y: 2, 3, 3, 1 → 2.25; hr: 5, 5, 4, 5 → 4.75.
    assert by["Y"].mean == 2.25 and by["Y"].counts == (1, 1, 2, 0, 0)
    assert by["hr"].mean == 4.75


# --------------------------------------------------------------------------------------------------
# Wilcoxon signed-rank


def test_wilcoxon_exact_small_case_by_hand():
    # d = +1 +2 −3 +4 +5 +6: ranks 1..6, W− = 3, W+ = 18. Under H0 each of the 2^6 = 64 sign patterns is
    # equally likely; the subsets of {1..6} with rank sum ≤ 3 are {}, {1}, {2}, {3}, {1,2}: 5 of 64. Two-sided
    # p = 2 · 5/64 = 0.15625.
    x = np.array([2, 3, 1, 5, 6, 7])
    y = np.array([1, 1, 4, 1, 1, 1])
    stat, p, test = wilcoxon_test(x, y)
    assert test == "exact"
    assert stat == 3.0
    assert p == pytest.approx(10 / 64, abs=1e-15)


def test_wilcoxon_ties_normal_approximation_by_hand():
    # d = 1 1 −2 2 2 3 (and two zeros, dropped): |d| ranks 1.5 1.5 4 4 4 6, W− = 4. n = 6: mean n(n+1)/4 =
    # 10.5, variance n(n+1)(2n+1)/24 − Σ(t³−t)/48 = 22.75 − (6 + 24)/48 = 22.125; z = (4 − 10.5)/√22.125.
    x = [2, 2, 1, 4, 4, 5, 3, 3]
    y = [1, 1, 3, 2, 2, 2, 3, 3]
    stat, p, test = wilcoxon_test(x, y)
    z = (4 - 10.5) / math.sqrt(22.125)
    assert test == "normal approx."
    assert stat == 4.0
    assert p == pytest.approx(2 * stats.norm.cdf(z), rel=1e-12)
    assert p == pytest.approx(0.167007, abs=1e-6)


def test_wilcoxon_agrees_with_scipy_on_rating_data():
    rng = np.random.default_rng(7)
    x = rng.integers(1, 6, 40)
    y = np.clip(x - rng.integers(-1, 3, 40), 1, 5)
    stat, p, _ = wilcoxon_test(x, y)
    ref = stats.wilcoxon(x, y, zero_method="wilcox", correction=False, method="approx")
    assert stat == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)


def test_wilcoxon_without_differences():
    assert wilcoxon_test([3, 4], [3, 4]) == (None, None, "none")


def test_paired_scores_by_rating_and_by_image():
    xa, xb = paired_scores(TINY, "X", "Y", "rating")
    # keys sorted: (ann, a), (ann, b), (bob, a), (bob, b)
    assert xa.tolist() == [4, 5, 3, 4] and xb.tolist() == [2, 3, 3, 1]
    ia, ib = paired_scores(TINY, "X", "Y", "image")
    assert ia.tolist() == [3.5, 4.5] and ib.tolist() == [2.5, 2.0]
    # A rater who scored only one of the two methods gives no pair.
    partial = [*TINY, ScoredVote("cy", "a", "X", 1)]
    assert paired_scores(partial, "X", "Y", "rating")[0].size == 4


def test_holm_adjust_by_hand():
    # sorted p: 0.01 (×3 = 0.03), 0.02 (×2 = 0.04), 0.04 (×1 = 0.04, monotone) ; None stays None.
    assert holm_adjust([0.04, None, 0.01, 0.02]) == pytest.approx([0.04, None, 0.03, 0.04])
    assert holm_adjust([0.6, 0.5]) == pytest.approx([1.0, 1.0])


# --------------------------------------------------------------------------------------------------
# Krippendorff's alpha


def test_krippendorff_alpha_by_hand():
    # Two raters, three units: (1, 1), (2, 3), (3, 3). Pairable values n = 6 with n_1 = 2, n_2 = 1, n_3 = 3;
    # coincidences o_11 = 2, o_23 = o_32 = 1, o_33 = 2.
    units = [[1, 1], [2, 3], [3, 3]]
    # interval: D_o = (1 + 1)/6; D_e = 2(n1n2·1 + n1n3·4 + n2n3·1)/(6·5) = 2(2 + 24 + 3)/30 = 58/30.
    assert krippendorff_alpha(units, "interval") == pytest.approx(1 - (2 / 6) / (58 / 30), abs=1e-12)
    # ordinal: δ²(1,2) = (3 − 1.5)² = 2.25, δ²(2,3) = (4 − 2)² = 4, δ²(1,3) = (6 − 2.5)² = 12.25;
    # D_o = (4 + 4)/6; D_e = 2(2·2.25 + 6·12.25 + 3·4)/30 = 6.
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(1 - (8 / 6) / 6, abs=1e-12)
    # nominal: D_o = 2/6; D_e = 2(2 + 6 + 3)/30 = 22/30.
    assert krippendorff_alpha(units, "nominal") == pytest.approx(1 - (2 / 6) / (22 / 30), abs=1e-12)


def test_krippendorff_alpha_published_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 observers, 12 units,
    # missing values. Published: nominal 0.743, ordinal 0.815, interval 0.849.
    nan = None
    table = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    units = [[row[u] for row in table if row[u] is not None] for u in range(12)]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(units, "interval") == pytest.approx(0.849, abs=5e-4)


def test_krippendorff_alpha_extremes():
    assert krippendorff_alpha([[1, 1], [3, 3], [5, 5, 5]]) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha([[2], [3]]))  # nothing pairable
    assert math.isnan(krippendorff_alpha([[2, 2], [2, 2]]))  # no variation


# --------------------------------------------------------------------------------------------------
# calibration check and the whole analysis


def test_calibration_check():
    votes = _table(
        [
            ("ann", "a", "nearest", 1), ("ann", "b", "nearest", 2), ("ann", "a", "hr", 5),
            ("bob", "a", "nearest", 4), ("bob", "a", "hr", 3),
        ]
    )  # fmt: skip
    by = {c.rater: c for c in calibration_check(votes, {"ann": 10, "bob": 10, "cy": 10})}
    assert (by["ann"].nearest_mean, by["ann"].hr_mean, by["ann"].ok) == (1.5, 5.0, True)
    assert by["bob"].ok is False
    assert by["cy"].ok is None and by["cy"].votes == 0


def test_analyse_votes_combines_everything():
    report = analyse_votes(TINY, ["X", "Y", "hr"], images=2, totals={"ann": 6, "bob": 6})
    assert [m.method for m in report.mos] == ["X", "Y", "hr"]
    assert [(t.a, t.b) for t in report.tests] == [("X", "Y"), ("X", "hr"), ("Y", "hr")]
    xy = report.tests[0]
    # X − Y per (rater, image): 2, 2, 0, 3 → zero dropped, |d| = 2, 2, 3 tied → normal approximation.
    ref = stats.wilcoxon([2, 2, 3], correction=False, method="approx")
    assert (xy.n_pairs, xy.n_nonzero, xy.mean_diff) == (4, 3, 1.75)
    assert xy.p_value == pytest.approx(ref.pvalue)
    assert report.alpha_ordinal == pytest.approx(
        krippendorff_alpha([[4, 3], [2, 3], [5, 4], [5, 4], [3, 1], [5, 5]], "ordinal")
    )
    assert report.votes == 12 and report.raters == 2
