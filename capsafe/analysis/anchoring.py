"""Capability anchoring (issue 4c): compare safety at matched capability, not matched epoch.

A target is an absolute accuracy, or a fraction of the best run's gain over the base
(threshold = base + fraction * (best - base), per base model). For each run the first
checkpoint whose accuracy reaches the threshold is its anchor; runs that never reach it are
listed with their best accuracy. At the anchors, every safety cell is set beside the
base's value in the same cell, and summarised across the matched runs.

Example:
    a = anchor(cell_rates(rows), Target(gain_fraction=0.8), capability="gsm8k/test")
    a.never_reached; [(s.run_id, s.metric, s.difference) for s in a.safety]
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from capsafe.analysis.labels import ModelInfo
from capsafe.analysis.metrics import CellRate


@dataclass(frozen=True)
class Target:
    accuracy: float | None = None
    gain_fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.accuracy is None) == (self.gain_fraction is None):
            raise ValueError("a capability target needs exactly one of accuracy, gain_fraction")

    def describe(self) -> str:
        if self.accuracy is not None:
            return f"accuracy >= {self.accuracy:g}"
        return f"{self.gain_fraction:g} of the best run's gain over the base"


@dataclass(frozen=True)
class Anchor:
    run_id: str
    model: ModelInfo  # the first checkpoint at the target
    accuracy: float


@dataclass(frozen=True)
class Missed:
    run_id: str
    setting: str
    seed: int | None
    best_accuracy: float


@dataclass(frozen=True)
class AnchoredSafety:
    run_id: str
    model: ModelInfo
    metric: str
    benchmark: str
    judge: str
    format: str
    value: CellRate
    base: CellRate | None
    difference: float  # value - base value; NaN without a base cell


@dataclass(frozen=True)
class MatchedSummary:
    """One safety cell over the runs matched at the target."""

    base_name: str
    metric: str
    benchmark: str
    judge: str
    format: str
    base_value: float
    mean: float
    min: float
    max: float
    n_runs: int


@dataclass(frozen=True)
class Anchoring:
    target: str
    thresholds: dict[str, float]  # per base model
    anchors: list[Anchor]
    never_reached: list[Missed]
    safety: list[AnchoredSafety]
    summary: list[MatchedSummary]


def _accuracies(
    rates: Sequence[CellRate], capability: str | None, fmt: str | None
) -> dict[str, CellRate]:
    acc: dict[str, list[CellRate]] = defaultdict(list)
    for r in rates:
        if r.metric == "accuracy" and r.sample_seed is None:
            if (capability is None or r.benchmark == capability) and (
                fmt is None or r.format == fmt
            ):
                acc[r.model.model_key].append(r)
    for key, found in acc.items():
        if len(found) > 1:
            cells = sorted(f"{r.benchmark}/{r.judge}/{r.format}" for r in found)
            raise ValueError(
                f"model {key} has {len(found)} accuracy cells ({', '.join(cells)}); "
                "name the capability benchmark (and format) to anchor on"
            )
    return {k: v[0] for k, v in acc.items()}


def anchor(
    rates: Sequence[CellRate],
    target: Target,
    capability: str | None = None,
    capability_format: str | None = None,
) -> Anchoring:
    """Anchor every run at its first checkpoint reaching the target on the capability
    benchmark, read under capability_format where several formats were tested."""
    acc = _accuracies(rates, capability, capability_format)
    base_acc = {r.model.base: r.value for r in acc.values() if r.model.is_base}
    runs: dict[str, list[CellRate]] = defaultdict(list)
    for r in acc.values():
        if not r.model.is_base:
            runs[r.model.run_id].append(r)
    thresholds: dict[str, float] = {}
    for base in {r.model.base for r in acc.values()}:
        if target.accuracy is not None:
            thresholds[base] = target.accuracy
        else:
            if base not in base_acc:
                raise ValueError(f"a gain target needs the base model {base}'s accuracy")
            best = max((r.value for v in runs.values() for r in v if r.model.base == base),
                       default=base_acc[base])  # fmt: skip
            thresholds[base] = base_acc[base] + target.gain_fraction * (best - base_acc[base])
    anchors, missed = [], []
    for run_id, ckpts in sorted(runs.items()):
        ckpts.sort(key=lambda r: r.model.epoch)
        threshold = thresholds[ckpts[0].model.base]
        # A float tolerance, so a target equal to an observed accuracy is reached by it.
        hit = next((r for r in ckpts if r.value >= threshold - 1e-12), None)
        if hit is None:
            m = ckpts[0].model
            missed.append(Missed(run_id, m.setting, m.seed, max(r.value for r in ckpts)))
        else:
            anchors.append(Anchor(run_id, hit.model, hit.value))
    safety = _safety_at(rates, anchors)
    return Anchoring(target.describe(), thresholds, anchors, missed, safety, _summarise(safety))


def _safety_at(rates: Sequence[CellRate], anchors: list[Anchor]) -> list[AnchoredSafety]:
    at = {a.model.model_key: a for a in anchors}
    bases = {
        (r.model.base, r.metric, r.benchmark, r.judge, r.format): r
        for r in rates
        if r.model.is_base and r.sample_seed is None
    }
    out = []
    for r in rates:
        a = at.get(r.model.model_key)
        if a is None or r.metric == "accuracy" or r.sample_seed is not None:
            continue
        base = bases.get((r.model.base, r.metric, r.benchmark, r.judge, r.format))
        diff = r.value - base.value if base else math.nan
        out.append(
            AnchoredSafety(a.run_id, r.model, r.metric, r.benchmark, r.judge, r.format, r, base,
                           diff)
        )  # fmt: skip
    return out


def _summarise(safety: list[AnchoredSafety]) -> list[MatchedSummary]:
    groups: dict[tuple, list[AnchoredSafety]] = defaultdict(list)
    for s in safety:
        groups[(s.model.base, s.metric, s.benchmark, s.judge, s.format)].append(s)
    out = []
    for key, ss in sorted(groups.items()):
        values = [s.value.value for s in ss]
        base = ss[0].base.value if ss[0].base else math.nan
        out.append(MatchedSummary(*key, base, statistics.fmean(values), min(values), max(values),
                                  len(values)))  # fmt: skip
    return out
