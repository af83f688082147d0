"""Statistics of the leaderboard: Wilson intervals, percentile bootstrap intervals and McNemar's exact test.

- **Wilson score interval** for proportions (0/1 metrics): it does not collapse to a zero-width interval at 0%
  or 100%, where the bootstrap does (every resample of all-wrong answers is all wrong).
- **Bootstrap CI** for micro F1 and for paired differences. Resample the n examples with replacement
  ``RESAMPLES`` times (numpy ``default_rng(SEED)``, so the same samples always give the same interval), recompute
  the statistic on each resample (micro F1 of the summed (tp, fp, fn) for ``slot_f1``, the mean of A − B for a
  paired difference), and take the 2.5th and 97.5th
  percentiles. Paired differences resample the shared examples once for both models.
- **McNemar exact test.** On the examples both models answered, b = A right and B wrong, c = A wrong and
  B right; under H0 (equal accuracy) b ~ Binomial(b + c, 1/2). Two-sided p = min(1, 2·P[X ≤ min(b, c)]);
  p = 1 when b + c = 0. Computed with exact integers.
- **Holm.** The p-values of all pairs of one task and metric are adjusted with Holm's step-down method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

SEED = 20230901
RESAMPLES = 10_000
CONFIDENCE = 0.95
_CHUNK = 500  # resamples drawn at a time: bounds memory at _CHUNK × n indices

Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]
#: Maps a (resamples, n) matrix of example indices to one statistic per resample.
Statistic = Callable[[Indices], Floats]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile bootstrap interval (NaN bounds when n = 0)."""

    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class McNemar:
    only_a: int  # b: examples A got right and B wrong
    only_b: int  # c: examples B got right and A wrong
    p_value: float


def bootstrap(statistic: Statistic, n: int, point: float, *, resamples: int = RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE) -> Estimate:
    """Percentile bootstrap interval of ``statistic`` over ``n`` examples resampled with replacement."""
    if n == 0:
        return Estimate(point, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    draws = [statistic(rng.integers(0, n, size=(min(_CHUNK, resamples - start), n)))
             for start in range(0, resamples, _CHUNK)]
    tail = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(draws), [tail, 1 - tail])
    return Estimate(point, float(low), float(high), n)


def mean_estimate(values: Sequence[float], **options: int) -> Estimate:
    """Mean of per-example 0/1 values with its bootstrap interval."""
    array = np.asarray(values, dtype=np.float64)
    point = float(array.mean()) if array.size else math.nan
    return bootstrap(lambda idx: array[idx].mean(axis=1), array.size, point, **options)


#: z of the two-sided 95% normal quantile.
Z_95 = 1.959963984540054


def wilson_estimate(values: Sequence[float]) -> Estimate:
    """Proportion of per-example 0/1 values with its 95% Wilson score interval."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    low, high = wilson_interval(round(sum(values)), n)
    return Estimate(sum(values) / n, low, high, n)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval of ``successes`` out of ``n``."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def micro_f1_estimate(counts: Sequence[tuple[int, int, int]], **options: int) -> Estimate:
    """Micro F1 of per-example (tp, fp, fn) with its bootstrap interval (examples resampled, counts summed)."""
    array = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    point = float(micro_f1_of_sums(array.sum(axis=0, keepdims=True))[0]) if len(array) else math.nan
    return bootstrap(lambda idx: micro_f1_of_sums(array[idx].sum(axis=1)), len(array), point, **options)


def micro_f1_of_sums(sums: Floats) -> Floats:
    """F1 = 2tp / (2tp + fp + fn) of each row of summed (tp, fp, fn); 1.0 where all three are 0
    (as :func:`ftbench.viggo.micro_f1`)."""
    tp, fp, fn = sums[:, 0], sums[:, 1], sums[:, 2]
    denominator = 2 * tp + fp + fn
    return np.where(denominator == 0, 1.0, 2 * tp / np.maximum(denominator, 1e-300))


def paired_difference(a: Sequence[float], b: Sequence[float], **options: int) -> Estimate:
    """Mean of A − B over the same examples, with a paired bootstrap interval."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    point = float(diff.mean()) if diff.size else math.nan
    return bootstrap(lambda idx: diff[idx].mean(axis=1), diff.size, point, **options)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> McNemar:
    """McNemar's exact (binomial) test of paired right/wrong outcomes of two models on the same examples."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length: {len(a)} and {len(b)}")
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    return McNemar(only_a, only_b, binomial_two_sided(min(only_a, only_b), only_a + only_b))


def binomial_two_sided(k: int, n: int) -> float:
    """min(1, 2·P[X ≤ k]) for X ~ Binomial(n, 1/2), k ≤ n/2; exact big-integer arithmetic, one rounding."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, float(Fraction(2 * tail, 1 << n)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order (monotone, capped at 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
