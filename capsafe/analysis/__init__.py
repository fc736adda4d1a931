"""Pure analysis functions: typed rows in, typed results out; no files touched."""

from capsafe.analysis.rates import (
    BASE_SETTING,
    MetricRow,
    Rate,
    SeedSpread,
    checkpoint_metrics,
    spread_over_seeds,
    wilson,
)
from capsafe.analysis.rows import ExperimentRows

__all__ = [
    "BASE_SETTING",
    "ExperimentRows",
    "MetricRow",
    "Rate",
    "SeedSpread",
    "checkpoint_metrics",
    "spread_over_seeds",
    "wilson",
]
