"""Statistical primitives: bootstrap intervals, paired and across-seed tests, Holm, effect sizes.

Everything here takes plain numbers (0/1 labels or scores, one per prompt or per seed) and
returns named results; the analyses build on these. Bootstraps use a seeded numpy Generator,
so a report is reproducible.

Example:
    >>> est = bootstrap_mean([1, 0, 1, 1], n_boot=1000, seed=0)
    >>> est.value
    0.75
    >>> mcnemar_exact([1, 1, 0, 0], [0, 0, 0, 1]).p_value  # 2 discordant one way, 1 the other
    1.0
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats as sps


class Estimate(NamedTuple):
    """A point estimate with its percentile interval (level 0.95 unless asked otherwise)."""

    value: float
    ci_low: float
    ci_high: float
    n: int


class TestResult(NamedTuple):
    statistic: float
    p_value: float
    method: str


def _percentile(boots: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_mean(
    values: Sequence[float],
    weights: Sequence[float] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """Mean of per-prompt values with a percentile bootstrap CI that resamples prompts.

    With `weights` (e.g. the number of labels behind each prompt's value) the estimate is the
    weighted mean, so several samples per prompt stay clustered on their prompt.
    """
    v = np.asarray(values, dtype=float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float)
    if v.shape != w.shape:
        raise ValueError(f"{len(v)} values but {len(w)} weights")
    if len(v) == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    value = float(np.sum(w * v) / np.sum(w))
    if n_boot == 0:  # the point estimate only
        return Estimate(value, math.nan, math.nan, len(v))
    idx = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))
    boots = np.sum(w[idx] * v[idx], axis=1) / np.sum(w[idx], axis=1)
    return Estimate(value, *_percentile(boots, level), len(v))


def _paired_arrays(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {len(x)} vs {len(y)}")
    return x, y


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[Estimate, float]:
    """Mean of b - a over the same prompts, a percentile CI, and a two-sided bootstrap p-value.

    The p-value is twice the share of resampled differences on the far side of zero (the
    percentile-interval inversion), floored at 1/n_boot's resolution by adding one.
    """
    x, y = _paired_arrays(a, b)
    d = y - x
    if len(d) == 0:
        return Estimate(math.nan, math.nan, math.nan, 0), math.nan
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    boots = d[idx].mean(axis=1)
    est = Estimate(float(d.mean()), *_percentile(boots, level), len(d))
    if np.all(d == 0):
        return est, 1.0
    tail = min(np.sum(boots <= 0), np.sum(boots >= 0))
    return est, float(min(1.0, 2 * (tail + 1) / (n_boot + 1)))


def mcnemar_exact(a: Sequence[bool | float], b: Sequence[bool | float]) -> TestResult:
    """Exact (binomial) McNemar test for paired 0/1 labels of the same prompts.

    statistic: the smaller discordant count, as statsmodels reports it.
    """
    x, y = _paired_arrays(a, b)
    only_a = int(np.sum((x == 1) & (y == 0)))
    only_b = int(np.sum((x == 0) & (y == 1)))
    n = only_a + only_b
    k = min(only_a, only_b)
    p = 1.0 if n == 0 else min(1.0, 2 * float(sps.binom.cdf(k, n, 0.5)))
    return TestResult(float(k), p, "mcnemar-exact")


def permutation_test(
    x: Sequence[float], y: Sequence[float], n_resamples: int = 9999, seed: int = 0
) -> TestResult:
    """Two-sided permutation test of mean(y) - mean(x) for independent groups (e.g. seeds).

    scipy enumerates every relabelling when there are no more than n_resamples of them, so
    with a handful of seeds the p-value is exact.
    """
    if len(x) < 1 or len(y) < 1:
        return TestResult(math.nan, math.nan, "permutation")
    if min(len(x), len(y)) < 2:  # scipy wants two per group; the exact test needs none
        return _exact_permutation(x, y)
    res = sps.permutation_test(
        (np.asarray(y, dtype=float), np.asarray(x, dtype=float)),
        lambda u, v: np.mean(u) - np.mean(v),
        permutation_type="independent",
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return TestResult(float(res.statistic), float(res.pvalue), "permutation")


def _exact_permutation(x: Sequence[float], y: Sequence[float]) -> TestResult:
    """Every relabelling of the pooled values (two-sided, on mean(y) - mean(x))."""
    import itertools

    pooled = [float(v) for v in (*x, *y)]
    observed = float(np.mean(y) - np.mean(x))
    total = sum(pooled)
    extreme = count = 0
    for ys in itertools.combinations(range(len(pooled)), len(y)):
        sy = sum(pooled[i] for i in ys)
        d = sy / len(y) - (total - sy) / len(x)
        extreme += abs(d) >= abs(observed) - 1e-12
        count += 1
    return TestResult(observed, extreme / count, "permutation")


def welch_t(x: Sequence[float], y: Sequence[float]) -> TestResult:
    """Welch's t-test (unequal variances) of mean(y) - mean(x); needs two values per group."""
    if len(x) < 2 or len(y) < 2:
        return TestResult(math.nan, math.nan, "welch-t")
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(xa) == 0 and np.ptp(ya) == 0:
        return TestResult(math.nan, math.nan, "welch-t")  # no spread in either group: undefined
    with warnings.catch_warnings():
        # scipy warns of precision loss when one group's values are identical; the test is
        # still defined by the other group's variance.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        res = sps.ttest_ind(ya, xa, equal_var=False)
    return TestResult(float(res.statistic), float(res.pvalue), "welch-t")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error), in the input order. NaN stays NaN."""
    finite = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(finite)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        # Monotone: an adjusted p-value is never smaller than the one ranked before it.
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h for two proportions, signed as p2 versus p1 (0.2 small, 0.5 medium, 0.8 large)."""
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


class PairedEffect(NamedTuple):
    """b versus a on the same prompts: the difference (risk difference for 0/1 labels) and a
    standardised effect (Cohen's h for 0/1 labels, Cohen's d_z for scores), each with a CI."""

    difference: Estimate
    effect: Estimate
    effect_name: str


def paired_effect(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> PairedEffect:
    x, y = _paired_arrays(a, b)
    binary = bool(np.all(np.isin(x, (0, 1))) and np.all(np.isin(y, (0, 1))))
    n = len(x)
    if n == 0:
        nan = Estimate(math.nan, math.nan, math.nan, 0)
        return PairedEffect(nan, nan, "cohens_h" if binary else "cohens_dz")
    # One set of resampled indices for both, so the two intervals describe the same resamples.
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    mx, my = x[idx].mean(axis=1), y[idx].mean(axis=1)
    diff = Estimate(float(y.mean() - x.mean()), *_percentile(my - mx, level), n)
    if binary:
        h = 2 * np.arcsin(np.sqrt(my)) - 2 * np.arcsin(np.sqrt(mx))
        eff = Estimate(cohens_h(float(x.mean()), float(y.mean())), *_percentile(h, level), n)
        return PairedEffect(diff, eff, "cohens_h")
    d = y - x
    sd = d.std(ddof=1) if n > 1 else 0.0
    dz = float(d.mean() / sd) if sd > 0 else math.nan
    sds = d[idx].std(axis=1, ddof=1) if n > 1 else np.zeros(n_boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        boots = np.where(sds > 0, d[idx].mean(axis=1) / sds, np.nan)
    boots = boots[~np.isnan(boots)]
    ci = _percentile(boots, level) if len(boots) else (math.nan, math.nan)
    return PairedEffect(diff, Estimate(dz, *ci, n), "cohens_dz")


def cohens_d(x: Sequence[float], y: Sequence[float], level: float = 0.95) -> Estimate:
    """Cohen's d of y versus x for independent groups (pooled SD), with the normal-theory CI
    of Hedges & Olkin (1985): SE = sqrt((n1+n2)/(n1 n2) + d^2 / (2 (n1+n2)))."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return Estimate(math.nan, math.nan, math.nan, n1 + n2)
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return Estimate(math.nan, math.nan, math.nan, n1 + n2)
    d = float((b.mean() - a.mean()) / pooled)
    se = math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))
    z = float(sps.norm.ppf((1 + level) / 2))
    return Estimate(d, d - z * se, d + z * se, n1 + n2)
