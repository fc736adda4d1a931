"""Spread over factors, and how much of a safety score's variance each factor explains (4b).

- spread_over(rates, factor): mean, std, min, max of a rate over the levels of one factor
  (seed, setting, format, sample_seed, benchmark, judge, epoch), everything else held fixed.
- decompose(rates, factors): variance components of one metric's rates over crossed random
  factors. method "mixedlm": REML fit of statsmodels MixedLM with one variance component per
  factor (crossed random intercepts, one all-covering group); method "anova": the
  expected-mean-squares (method of moments) estimator for a balanced main-effects design,
  sigma2_f = max(0, (MS_f - MS_resid) / (N / L_f)). Factors with a single level are dropped.

Example:
    rates = [r for r in cell_rates(rows) if r.metric == "harmful" and r.model.epoch == 2]
    decompose(rates, ["seed", "setting", "format", "judge"]).components
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from capsafe.analysis.metrics import CellRate

IDENTITY = (
    "base", "task", "recipe", "setting", "seed", "epoch", "round", "metric", "benchmark",
    "judge", "format", "sample_seed",
)  # fmt: skip
FACTORS = ("recipe", "seed", "setting", "format", "sample_seed", "benchmark", "judge")


@dataclass(frozen=True)
class FactorSpread:
    factor: str
    fixed: tuple[tuple[str, object], ...]  # the other identity fields, held fixed
    mean: float
    std: float  # sample standard deviation; 0 with one level
    min: float
    max: float
    n_levels: int

    def level(self, name: str) -> object:
        """The value of one identity field held fixed (e.g. "epoch", "judge")."""
        for f, v in self.fixed:
            if f == name:
                return v
        raise KeyError(f"{name!r} is not held fixed in a spread over {self.factor}")


def spread_over(rates: Sequence[CellRate], factor: str) -> list[FactorSpread]:
    if factor not in IDENTITY:
        raise ValueError(f"unknown factor {factor!r}; one of {', '.join(IDENTITY)}")
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rates:
        if not math.isnan(r.value):
            fixed = tuple((f, r.factor(f)) for f in IDENTITY if f != factor)
            groups[fixed].append(r.value)
    return [
        FactorSpread(factor, fixed, statistics.fmean(v),
                     statistics.stdev(v) if len(v) > 1 else 0.0, min(v), max(v), len(v))
        for fixed, v in sorted(groups.items(), key=lambda kv: repr(kv[0]))
    ]  # fmt: skip


@dataclass(frozen=True)
class Component:
    factor: str
    variance: float
    share: float  # of the total (components + residual)
    n_levels: int


@dataclass(frozen=True)
class VarianceDecomposition:
    metric: str
    method: str
    components: tuple[Component, ...]
    residual: float
    n_obs: int
    dropped: tuple[str, ...]  # factors with a single level: no variance to attribute


def _anova(y: np.ndarray, levels: dict[str, list]) -> tuple[dict[str, float], float]:
    n = len(y)
    cells = {tuple(levels[f][i] for f in levels) for i in range(n)}
    sizes = {f: len(set(v)) for f, v in levels.items()}
    if len(cells) != n or math.prod(sizes.values()) != n:
        raise ValueError(
            "the anova method needs a balanced, fully crossed design with one value per "
            f"combination of {', '.join(levels)}; got {n} values for "
            f"{math.prod(sizes.values())} combinations (use method='mixedlm')"
        )
    grand, ss, dfs = y.mean(), {}, {}
    for f, v in levels.items():
        labels = np.array([str(x) for x in v])
        means = {lv: y[labels == lv].mean() for lv in set(labels)}
        ss[f] = (n / sizes[f]) * sum((m - grand) ** 2 for m in means.values())
        dfs[f] = sizes[f] - 1
    df_res = n - 1 - sum(dfs.values())
    ms_res = (np.sum((y - grand) ** 2) - sum(ss.values())) / df_res if df_res > 0 else 0.0
    comps = {f: max(0.0, (ss[f] / dfs[f] - ms_res) / (n / sizes[f])) for f in levels}
    return comps, float(max(ms_res, 0.0))


def _mixedlm(y: np.ndarray, levels: dict[str, list]) -> tuple[dict[str, float], float]:
    import pandas as pd
    import statsmodels.api as sm

    df = pd.DataFrame({f: [str(x) for x in v] for f, v in levels.items()})
    df["y"], df["all"] = y, 1
    vc = {f: f"0 + C({f})" for f in levels}
    model = sm.MixedLM.from_formula("y ~ 1", groups="all", re_formula="0", vc_formula=vc, data=df)
    with warnings.catch_warnings():
        # Components at zero (on the boundary) are an answer here, not a failure.
        warnings.simplefilter("ignore")
        fit = model.fit(reml=True, method=["lbfgs"])
    comps = dict(zip(model.exog_vc.names, (float(v) for v in fit.vcomp), strict=True))
    return comps, float(fit.scale)


def decompose(
    rates: Sequence[CellRate], factors: Sequence[str] = FACTORS, method: str = "mixedlm"
) -> VarianceDecomposition:
    metrics = {r.metric for r in rates}
    if len(metrics) != 1:
        raise ValueError(f"decompose one metric at a time; got {sorted(metrics)}")
    kept = [r for r in rates if not math.isnan(r.value)]
    levels = {f: [r.factor(f) for r in kept] for f in factors}
    dropped = tuple(f for f in factors if len(set(levels[f])) < 2)
    levels = {f: v for f, v in levels.items() if f not in dropped}
    if not levels or len(kept) < 3:
        raise ValueError(
            f"nothing to decompose: {len(kept)} values, varying factors {list(levels)}"
        )
    y = np.array([r.value for r in kept])
    fits = {"mixedlm": _mixedlm, "anova": _anova}
    if method not in fits:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(fits)}")
    comps, residual = fits[method](y, levels)
    total = sum(comps.values()) + residual
    return VarianceDecomposition(
        metric=metrics.pop(),
        method="MixedLM REML variance components" if method == "mixedlm" else "ANOVA EMS",
        components=tuple(
            Component(f, comps[f], comps[f] / total if total else math.nan, len(set(levels[f])))
            for f in levels
        ),
        residual=residual,
        n_obs=len(kept),
        dropped=dropped,
    )
