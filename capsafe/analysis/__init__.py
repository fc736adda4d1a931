"""Pure analysis functions: typed rows in, typed results out; no files touched.

The rows load eagerly; the analyses built on scipy (cell_rates, versus_base, stability,
anchor, judge_reliability, run_analyses, ...) load on first use, so importing a submodule
such as capsafe.analysis.rows stays light.

    from capsafe.analysis import ExperimentRows, cell_rates, stability, versus_base
    rates = cell_rates(ExperimentRows.from_store(store))
    verdicts = stability(versus_base(rows, ["harmful"]))
"""

from importlib import import_module

from capsafe.analysis.rows import ExperimentRows

_LAZY = {
    "ReportAnalyses": "analyses",
    "run_analyses": "analyses",
    "BASE_SETTING": "labels",
    "SAFETY_METRIC": "labels",
    "judge_label": "labels",
    "Anchoring": "anchoring",
    "Target": "anchoring",
    "anchor": "anchoring",
    "CellRate": "metrics",
    "cell_rates": "metrics",
    "Reliability": "reliability",
    "judge_reliability": "reliability",
    "Comparison": "significance",
    "across_seeds": "significance",
    "between_models": "significance",
    "versus_base": "significance",
    "Verdict": "stability",
    "stability": "stability",
    "harm_vs_compliance": "compliance",
    "decompose": "variance",
    "spread_over": "variance",
    "observed_power": "planning",
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'capsafe.analysis' has no attribute {name!r}")
    return getattr(import_module(f"capsafe.analysis.{_LAZY[name]}"), name)


__all__ = ["ExperimentRows", *_LAZY]
