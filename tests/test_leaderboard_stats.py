"""The leaderboard's statistics against scipy and against values worked out by hand."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats

from ftbench.leaderboard._stats import (
    SEED,
    binomial_two_sided,
    holm,
    mcnemar_exact,
    mean_estimate,
    micro_f1_estimate,
    paired_difference,
    wilson_estimate,
)


@pytest.mark.parametrize(("only_a", "only_b"), [(0, 0), (1, 0), (4, 2), (6, 3), (10, 0), (25, 40), (300, 260)])
def test_mcnemar_exact_p_value_is_scipys_two_sided_binomial_test(only_a: int, only_b: int) -> None:
    both, neither = 7, 5
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    result = mcnemar_exact(a, b)
    assert (result.only_a, result.only_b) == (only_a, only_b)
    expected = 1.0 if only_a + only_b == 0 else stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_binomial_tail_by_hand() -> None:
    assert binomial_two_sided(2, 6) == 2 * (1 + 6 + 15) / 64  # 0.6875
    assert binomial_two_sided(0, 10) == 2 / 1024
    assert binomial_two_sided(3, 6) == 1.0  # capped
    # thousands of discordant pairs: exact integers, no float overflow (2**3000 is not a float)
    assert binomial_two_sided(1440, 3000) == pytest.approx(stats.binomtest(1440, 3000, 0.5).pvalue, rel=1e-9)


def test_mcnemar_rejects_unpaired_outcomes() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar_exact([True], [True, False])


def test_bootstrap_interval_of_a_mean_agrees_with_scipys_percentile_bootstrap() -> None:
    values = np.random.default_rng(7).random(300) < 0.62
    ours = mean_estimate(values.astype(float).tolist())
    theirs = stats.bootstrap((values.astype(float),), np.mean, method="percentile", n_resamples=20_000,
                             rng=np.random.default_rng(11)).confidence_interval
    assert ours.value == pytest.approx(values.mean()) and ours.n == 300
    assert ours.low == pytest.approx(theirs.low, abs=0.01) and ours.high == pytest.approx(theirs.high, abs=0.01)
    # and the normal approximation of a proportion's interval, as a second reference
    half = 1.96 * math.sqrt(ours.value * (1 - ours.value) / 300)
    assert ours.low == pytest.approx(ours.value - half, abs=0.01)


def test_bootstrap_interval_depends_on_the_data_and_its_seed_only() -> None:
    values = np.random.default_rng(5).random(40).tolist()  # continuous: another draw moves the percentiles
    first = mean_estimate(values)
    np.random.seed(1)  # the global generators must not matter
    random.seed(1)
    assert mean_estimate(values) == first
    assert first.low < first.value < first.high
    assert mean_estimate(values, seed=SEED + 1) != first  # the seed is what fixes the interval


def test_bootstrap_degenerate_cases_are_exact() -> None:
    all_right = mean_estimate([1.0] * 20)
    assert (all_right.value, all_right.low, all_right.high) == (1.0, 1.0, 1.0)
    empty = mean_estimate([])
    assert empty.n == 0 and math.isnan(empty.value) and math.isnan(empty.low)


def test_micro_f1_estimate_sums_counts_before_f1() -> None:
    counts = [(3, 1, 0), (0, 0, 4), (2, 2, 2), (5, 0, 1)]
    estimate = micro_f1_estimate(counts)
    # summed: tp 10, fp 3, fn 7 -> 2*10 / (2*10 + 3 + 7); the mean of the per-example F1s would be 0.566
    assert estimate.value == pytest.approx(20 / 30)
    assert estimate.low < estimate.value < estimate.high


def test_paired_difference_interval_brackets_the_difference() -> None:
    rng = np.random.default_rng(3)
    a = (rng.random(200) < 0.7).astype(float)
    b = np.where(rng.random(200) < 0.9, a, 1 - a)
    diff = paired_difference(a.tolist(), b.tolist())
    assert diff.value == pytest.approx(float((a - b).mean()))
    assert diff.low < diff.value < diff.high
    same = paired_difference(a.tolist(), a.tolist())
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)


def test_holm_adjustment_by_hand() -> None:
    # sorted p: 0.01 (×3 = 0.03), 0.02 (×2 = 0.04), 0.04 (×1 = 0.04); back in input order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    # monotone: a later step never falls below an earlier one; capped at 1
    assert holm([0.02, 0.011, 0.5, 0.6]) == pytest.approx([0.06, 0.044, 1.0, 1.0])
    assert holm([]) == []


@pytest.mark.parametrize(("right", "n"), [(0, 5), (5, 5), (0, 200), (1, 20), (104, 200), (200, 200)])
def test_wilson_interval_is_scipys_and_does_not_collapse_at_0_or_100_percent(right: int, n: int) -> None:
    estimate = wilson_estimate([1.0] * right + [0.0] * (n - right))
    expected = stats.binomtest(right, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (estimate.value, estimate.n) == (right / n, n)
    assert estimate.low == pytest.approx(expected.low, abs=1e-12)
    assert estimate.high == pytest.approx(expected.high, abs=1e-12)
    assert estimate.high - estimate.low > 0.01, "an interval of width 0 would claim certainty from n examples"
    bootstrap = mean_estimate([1.0] * right + [0.0] * (n - right), resamples=500)
    if right in (0, n):
        assert bootstrap.low == bootstrap.high, "the bootstrap collapses here, the reason for Wilson"
