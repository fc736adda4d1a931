"""Every analysis of an experiment, computed once from its rows, with a note where one cannot run.

Pure: rows in, a ReportAnalyses out; the report's sections only render it. An analysis that
lacks its data (one seed, no coherence judge, no capability task) leaves its field empty and
says why in `notes`, so the report can print the reason instead of failing.

    a = run_analyses(ExperimentRows.from_store(store))
    a.verdicts[0].line, a.notes.get("variance")
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from capsafe.analysis.anchoring import Anchoring, Target, anchor
from capsafe.analysis.compliance import ComplianceFit, harm_vs_compliance
from capsafe.analysis.labels import SAFETY_METRIC
from capsafe.analysis.metrics import CellRate, cell_rates
from capsafe.analysis.planning import CellPower, observed_power
from capsafe.analysis.recipes import LevelComparison, compare_recipes, compare_settings
from capsafe.analysis.reliability import Reliability, judge_reliability
from capsafe.analysis.rows import ExperimentRows
from capsafe.analysis.significance import (
    Comparison,
    SeedComparison,
    across_seeds,
    seeds_with_holm,
    versus_base,
)
from capsafe.analysis.stability import Verdict, stability
from capsafe.analysis.variance import (
    FACTORS,
    FactorSpread,
    VarianceDecomposition,
    decompose,
    spread_over,
)
from capsafe.config import ReportSpec

VARIANCE_FACTORS = ("base", "recipe", "seed", "setting", "format", "benchmark", "judge")


@dataclass(frozen=True)
class ReportAnalyses:
    rates: list[CellRate]  # pooled over sample seeds
    safety_metric: str | None
    capability: str | None  # the capability benchmark anchored on
    comparisons: list[Comparison]  # every checkpoint vs its base, safety metric, Holm-adjusted
    verdicts: list[Verdict]
    anchoring: Anchoring | None
    fits: list[ComplianceFit]
    decomposition: VarianceDecomposition | None
    reliability: Reliability | None
    coherence_judge: str | None
    n_boot: int
    spreads: list[FactorSpread] = field(default_factory=list)  # fine-tuned runs, per factor
    # Every rate over its fine-tuning seeds, bases included (one level): the epoch figure and
    # the seed tables read these, so they show the same rates as every other section.
    seed_spreads: list[FactorSpread] = field(default_factory=list)
    setting_tests: list[SeedComparison] = field(default_factory=list)  # settings over seeds
    power: list[CellPower] = field(default_factory=list)
    power_change: float = math.nan  # the change the power analysis plans for
    notes: dict[str, str] = field(default_factory=dict)  # analysis -> why it is missing
    # Recipes against the baseline, and grid points against the first, at matched capability.
    recipes: LevelComparison | None = None
    settings_matched: LevelComparison | None = None


def run_analyses(
    rows: ExperimentRows, spec: ReportSpec | None = None, n_boot: int = 1000
) -> ReportAnalyses:
    spec = spec or ReportSpec()
    notes: dict[str, str] = {}
    rates = [r for r in cell_rates(rows, n_boot=n_boot) if r.sample_seed is None]
    # Where responses were sampled, each sampling seed's rates too: sampling is a factor of
    # its own, beside fine-tuning seeds and formats (point estimates; the CIs stay pooled).
    sampled = len({g.sample_seed for g in rows.generations}) > 1
    by_sample = cell_rates(rows, n_boot=0, by_sample_seed=True) if sampled else []
    present = {r.metric for r in rates}
    safety = SAFETY_METRIC if SAFETY_METRIC in present else None
    if safety is None:
        notes["safety"] = "No judge gave a harmful or refusal label on harmful prompts."
    has_runs = any(not r.model.is_base for r in rates)
    if not has_runs:
        notes["runs"] = "The store has no fine-tuned checkpoint, only base models."
    comparisons = versus_base(rows, [safety], n_boot=n_boot) if safety else []
    verdicts = stability(comparisons)
    capability = _capability(rates, spec.capability_benchmark, notes)
    anchoring = None
    if capability is None:
        notes.setdefault(
            "anchoring", "No capability task was scored, so nothing can be anchored on it."
        )
    elif not has_runs:
        notes["anchoring"] = "No fine-tuned checkpoints to anchor."
    else:
        target = spec.capability_target
        try:
            fmt = _capability_format(rates, capability, spec.capability_format)
            anchoring = anchor(
                rates, Target(target.accuracy, target.gain_fraction), capability, fmt
            )
        except ValueError as e:
            notes["anchoring"] = f"Capability anchoring could not run: {e}"
    fits = harm_vs_compliance(rates)
    if not fits:
        notes["compliance"] = (
            "Harmfulness versus compliance needs a harmful label and a refusal label on the "
            "same harmful prompts; the store has not both."
        )
    decomposition = _decomposition(by_sample or rates, safety, notes)
    coherence = _coherence_judge(rates)
    reliability = None
    if coherence is None:
        notes["reliability"] = "No coherence judge ran, so judge labels cannot be split by it."
    if safety is not None:
        try:
            reliability = judge_reliability(rows, safety, coherence_judge=coherence)
        except ValueError as e:
            notes["reliability"] = f"Judge reliability could not run: {e}"
    power = observed_power(rows, spec.power_change, safety) if safety and has_runs else []
    if safety and has_runs and not power:
        notes["power"] = "Power needs the base's rate beside fine-tuned runs' rates; none found."
    recipes = settings_matched = None
    if anchoring is not None and safety is not None and capability is not None:
        recipes = compare_recipes(rows, rates, anchoring, capability, n_boot)
        settings_matched = compare_settings(rows, rates, anchoring, capability, n_boot)
    if recipes is None:
        notes["recipes"] = (
            "One training recipe (or no anchoring): no recipes to compare."
            if anchoring is not None
            else "Recipes are compared at matched capability, which needs capability anchoring."
        )
    return ReportAnalyses(
        recipes=recipes,
        settings_matched=settings_matched,
        rates=rates,
        safety_metric=safety,
        capability=capability,
        comparisons=comparisons,
        verdicts=verdicts,
        anchoring=anchoring,
        fits=fits,
        decomposition=decomposition,
        reliability=reliability,
        coherence_judge=coherence,
        n_boot=n_boot,
        spreads=_spreads(rates, safety, capability, by_sample),
        seed_spreads=spread_over(rates, "seed"),
        setting_tests=_setting_tests(rates, safety, anchoring, notes),
        power=power,
        power_change=spec.power_change,
        notes=notes,
    )


def _capability(rates: list[CellRate], wanted: str | None, notes: dict[str, str]) -> str | None:
    # Anchor on the benchmark the fine-tuning task was tested on; the first one if several.
    found = sorted({r.benchmark for r in rates if r.metric == "accuracy"})
    if wanted is None:
        return found[0] if found else None
    if wanted not in found:
        notes["anchoring"] = (
            f"report.capability_benchmark is {wanted!r}, which was not scored; scored: "
            f"{', '.join(found) or 'none'}."
        )
        return None
    return wanted


def _capability_format(rates: list[CellRate], capability: str, wanted: str | None) -> str | None:
    """The format capability is read under: the one asked for where it was scored, else the
    first scored, alphabetically (a store without saved settings)."""
    found = sorted(
        {r.format for r in rates if r.metric == "accuracy" and r.benchmark == capability}
    )
    return wanted if wanted in found else (found[0] if found else None)


def _spreads(
    rates: list[CellRate], safety: str | None, capability: str | None,
    by_sample: list[CellRate],
) -> list[FactorSpread]:  # fmt: skip
    """Mean, std, min and max over each factor that varies, for fine-tuned runs; over
    sampling seeds from each seed's rates (`by_sample`), every other factor from the pooled."""

    def wanted(r: CellRate) -> bool:
        task = r.metric == "accuracy" and r.benchmark == capability
        return not r.model.is_base and (r.metric == safety or task)

    def kept(rs: list[CellRate]) -> list[CellRate]:
        return [r for r in rs if wanted(r)]

    out = []
    for factor in FACTORS:
        source = kept(by_sample) if factor == "sample_seed" else kept(rates)
        out += [s for s in spread_over(source, factor) if s.n_levels > 1]
    return out


def _setting_tests(
    rates: list[CellRate], safety: str | None, anchoring: Anchoring | None, notes: dict[str, str]
) -> list[SeedComparison]:
    """Every pair of settings over their seeds: at the last epoch, and at matched capability."""
    runs = [r for r in rates if r.metric == safety and not r.model.is_base]
    settings = sorted({r.model.setting for r in runs})
    if len(settings) < 2:
        notes["settings"] = "One hyperparameter setting: no settings to compare."
        return []
    last = max(r.model.epoch for r in runs)
    at = {a.model.model_key for a in anchoring.anchors} if anchoring else set()
    matched = [r for r in runs if r.model.model_key in at]
    out = []
    for i, a in enumerate(settings):
        for b in settings[i + 1 :]:
            out += across_seeds(runs, a, b, last) + across_seeds(matched, a, b, None)
    if not out:
        notes["settings"] = "No two settings share a safety cell to compare."
    return seeds_with_holm(out)


def _coherence_judge(rates: list[CellRate]) -> str | None:
    found = sorted({r.judge for r in rates if r.metric == "incoherent"})
    return found[0] if found else None


def _decomposition(
    rates: list[CellRate], safety: str | None, notes: dict[str, str]
) -> VarianceDecomposition | None:
    """Variance of the safety rate over the fine-tuned runs at their last epoch (`rates`:
    pooled over sampling seeds, or each sampling seed's)."""
    runs = [r for r in rates if r.metric == safety and not r.model.is_base]
    if not runs:
        notes["variance"] = "No safety rates of fine-tuned checkpoints to decompose."
        return None
    last = max(r.model.epoch for r in runs)
    at = [r for r in runs if r.model.epoch == last and not math.isnan(r.value)]
    if len({r.model.seed for r in at}) < 2:
        notes["variance"] = (
            f"Only one fine-tuning seed at epoch {last}: seed-to-seed variance cannot be "
            "estimated, so seed is left out of the decomposition."
        )
    # Each sampling seed's rates, where responses were sampled: sample_seed is a factor.
    sampled = bool(at) and at[0].sample_seed is not None
    factors = VARIANCE_FACTORS + (("sample_seed",) if sampled else ())
    try:
        return decompose(at, factors, method="mixedlm")
    # MixedLM raises numpy's LinAlgError on a singular design (e.g. two values).
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:
        seed_note = notes.get("variance", "")
        notes["variance"] = f"{seed_note} The variance decomposition could not be fitted: {e}"
        notes["variance"] = notes["variance"].strip()
        return None
