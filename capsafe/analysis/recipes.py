"""Recipes (and settings) compared at matched capability: the comparison anchoring exists for.

For a factor (the training recipe, or the hyperparameter setting) and its reference level
(the baseline recipe, or the first setting), every other level is set against the reference
at each run's anchored checkpoint (the first epoch reaching the capability target), pairing
runs that differ only in that factor (same base, the other factor's level, same seed):

- paired on prompts: the labels of every matched pair of runs stacked, compared with
  significance.compare_cells (one pair: exact McNemar; several: per-prompt means, paired
  bootstrap), difference and CI in rate units; Holm over every level x cell of the family;
- across fine-tuning seeds: the anchored runs' rates, permutation test and Welch
  (significance.across_seeds), Holm over the family;
- a verdict per level x benchmark x judge x format: "reduces harm" / "raises harm" (Holm
  p < 0.05 on the paired test, by the sign of the difference) or "inconclusive";
- conclusion stability per level: whether the verdict holds, flips or stays inconclusive
  across benchmark x judge x format (the research's warning: it can change with either);
- the price of each level: does it still reach the target, at which epoch, its accuracy
  there, and its over-refusal and incoherent share at the anchor;
- runs that never reach the target, per level, never dropped silently.

A stopping recipe (stop_at_target) is set against the reference trained to the end: its
last checkpoint (the one it stopped at) against the reference run's last, since at matched
capability the two are one model (same data, seed and steps up to the stop). Runs are read
with their own checkpoints (labels.run_views), so a checkpoint two runs share counts for both.

Example:
    r = compare_recipes(rows, rates, anchoring)
    [(c.level, c.benchmark, c.judge, c.comparison.difference, c.verdict) for c in r.cells]
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from capsafe.analysis.anchoring import Anchoring, Missed
from capsafe.analysis.labels import (
    BASELINE_RECIPE,
    SAFETY_METRIC,
    CellKey,
    CellLabels,
    ModelInfo,
    RunView,
    cell_labels,
    model_infos,
    run_views,
)
from capsafe.analysis.metrics import CellRate
from capsafe.analysis.rows import ExperimentRows
from capsafe.analysis.significance import (
    Comparison,
    SeedComparison,
    compare_cells,
    seeds_with_holm,
    with_holm,
)
from capsafe.analysis.stats import cohens_d, permutation_test, welch_t

ALPHA = 0.05
STOPPING_RECIPES = ("stop_at_target",)  # compared with the reference trained to the end
REDUCES, RAISES, INCONCLUSIVE = "reduces harm", "raises harm", "inconclusive"
PRICE_METRICS = ("accuracy", "over_refusal", "incoherent")
# Paired units of the k-th pair of runs: (prompt id, k * this + sample seed), so stacked
# pairs never collide and compare_cells averages a prompt over them.
_PAIR_STRIDE = 1_000_000


@dataclass(frozen=True)
class LevelCell:
    """One level against the reference on one safety cell, at matched capability."""

    factor: str
    base: str
    level: str
    reference: str
    within: str  # the other factor's level the pairs share (grid point, or recipe)
    metric: str
    benchmark: str
    judge: str
    format: str
    pairs: tuple[tuple[int | None, int, int], ...]  # (seed, level's epoch, reference's epoch)
    to_end: bool  # the reference at its last epoch (a stopping recipe), not at the target
    comparison: Comparison  # b = the level, a = the reference; p_holm over the family
    seeds: SeedComparison | None  # across fine-tuning seeds (None: too few runs)
    verdict: str = INCONCLUSIVE


@dataclass(frozen=True)
class LevelStability:
    """Whether one level's verdict against the reference holds across the safety cells."""

    factor: str
    base: str
    level: str
    reference: str
    within: str
    n_cells: int
    n_reduces: int
    n_raises: int
    low: float  # smallest difference over the cells
    high: float  # largest

    @property
    def verdict(self) -> str:
        if self.n_reduces and self.n_raises:
            return "flips between cells"
        if self.n_reduces == self.n_cells:
            return f"holds everywhere: {REDUCES}"
        if self.n_raises == self.n_cells:
            return f"holds everywhere: {RAISES}"
        if self.n_reduces or self.n_raises:
            side = REDUCES if self.n_reduces else RAISES
            n = self.n_reduces or self.n_raises
            return f"depends on the cell: {side} in {n} of {self.n_cells}"
        return "inconclusive everywhere"


@dataclass(frozen=True)
class LevelPrice:
    """What a level costs, at each run's anchored checkpoint, over its runs."""

    factor: str
    base: str
    level: str
    within: str
    n_runs: int
    n_reached: int
    epochs: tuple[int, ...]  # anchored epoch of each run that reached the target
    accuracy: float  # mean accuracy at the anchor (NaN: none reached)
    best_accuracy: float  # best accuracy of any checkpoint of the level's runs
    means: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    # (metric, benchmark, judge, format) -> mean over the anchored runs, for PRICE_METRICS


@dataclass(frozen=True)
class LevelComparison:
    factor: str  # "recipe" or "setting"
    reference: str
    cells: list[LevelCell]
    stability: list[LevelStability]
    prices: list[LevelPrice]
    missed: dict[str, list[Missed]]  # level -> runs that never reached the target
    unpaired: list[str]  # level runs with no reference run to pair with, described


def compare_recipes(
    rows: ExperimentRows,
    rates: Sequence[CellRate],
    anchoring: Anchoring,
    capability: str,
    n_boot: int = 1000,
) -> LevelComparison | None:
    """Every recipe against the baseline (or, without one, the first recipe); None with one."""
    levels = sorted({r.recipe for r in run_views(rows)})
    if len(levels) < 2:
        return None
    ref = BASELINE_RECIPE if BASELINE_RECIPE in levels else levels[0]
    return compare_levels(rows, rates, anchoring, capability, "recipe", ref,
                          lambda r: r.recipe, lambda r: r.grid, n_boot)  # fmt: skip


def compare_settings(
    rows: ExperimentRows,
    rates: Sequence[CellRate],
    anchoring: Anchoring,
    capability: str,
    n_boot: int = 1000,
) -> LevelComparison | None:
    """Every grid point against the first, within each recipe; None with one grid point."""
    levels = sorted({r.grid for r in run_views(rows)})
    if len(levels) < 2:
        return None
    return compare_levels(rows, rates, anchoring, capability, "setting", levels[0],
                          lambda r: r.grid, lambda r: r.recipe, n_boot)  # fmt: skip


def compare_levels(
    rows: ExperimentRows,
    rates: Sequence[CellRate],
    anchoring: Anchoring,
    capability: str,
    factor: str,
    reference: str,
    level_of: Callable[[RunView], str],
    within_of: Callable[[RunView], str],
    n_boot: int = 1000,
) -> LevelComparison:
    infos = model_infos(rows)
    runs = run_views(rows)
    acc = {
        r.model.model_key: r.value
        for r in rates
        if r.metric == "accuracy" and r.benchmark == capability and not math.isnan(r.value)
    }
    anchors = {}
    for run in runs:
        epoch = _anchor_epoch(run, acc, anchoring.thresholds.get(run.base))
        if epoch is not None:
            anchors[run.run_id] = epoch
    by_pair: dict[tuple, dict[str, RunView]] = defaultdict(dict)
    for run in runs:
        by_pair[(run.base, within_of(run), run.seed)][level_of(run)] = run
    pairs: dict[tuple, list[tuple[str, str, int, int]]] = defaultdict(list)
    unpaired = []
    for (base, within, seed), by_level in sorted(by_pair.items(), key=repr):
        ref = by_level.get(reference)
        for level, run in sorted(by_level.items()):
            if level == reference or run.run_id not in anchors:
                continue
            to_end = factor == "recipe" and run.recipe_name in STOPPING_RECIPES
            if ref is None or (not to_end and ref.run_id not in anchors):
                unpaired.append(
                    f"{run.describe()}: no {reference} run of seed {seed} at the target"
                )
                continue
            mine = max(run.checkpoints) if to_end else anchors[run.run_id]
            theirs = max(ref.checkpoints) if to_end else anchors[ref.run_id]
            pairs[(base, level, within, to_end)].append(
                (ref.checkpoints[theirs], run.checkpoints[mine], mine, theirs)
            )
    cells = _paired_cells(rows, factor, reference, pairs, rates, infos, n_boot)
    return LevelComparison(
        factor,
        reference,
        cells,
        _stability(cells),
        _prices(factor, rates, runs, anchors, acc, level_of, within_of),
        _missed(runs, anchors, acc, level_of),
        unpaired,
    )


def _anchor_epoch(run: RunView, acc: dict[str, float], threshold: float | None) -> int | None:
    """The run's first epoch whose accuracy reaches the threshold (float tolerance)."""
    if threshold is None:
        return None
    for epoch, key in run.checkpoints.items():
        if key in acc and acc[key] >= threshold - 1e-12:
            return epoch
    return None


def _paired_cells(
    rows: ExperimentRows,
    factor: str,
    reference: str,
    pairs: dict[tuple, list[tuple[str, str, int, int]]],
    rates: Sequence[CellRate],
    infos: dict[str, ModelInfo],
    n_boot: int,
) -> list[LevelCell]:
    by_model: dict[str, dict[tuple, CellLabels]] = defaultdict(dict)
    for key, cell in cell_labels(rows).items():
        if key.metric == SAFETY_METRIC:
            by_model[key.model_key][key[1:]] = cell
    rate_of = {(r.model.model_key, r.metric, r.benchmark, r.judge, r.format): r.value
               for r in rates if r.metric == SAFETY_METRIC}  # fmt: skip
    out = []
    for (base, level, within, to_end), ps in sorted(pairs.items()):
        shared = set.intersection(*(by_model[a].keys() & by_model[b].keys() for a, b, _, _ in ps))
        seeds = tuple(infos[b].seed for _, b, _, _ in ps)
        for rest in sorted(shared):
            ca = _stack([by_model[a][rest] for a, _, _, _ in ps])
            cb = _stack([by_model[b][rest] for _, b, _, _ in ps])
            comparison = compare_cells(infos[ps[0][0]], infos[ps[0][1]], ca, cb, n_boot)
            x = [rate_of[(a, *rest)] for a, _, _, _ in ps]
            y = [rate_of[(b, *rest)] for _, b, _, _ in ps]
            matched = tuple((s, p[2], p[3]) for s, p in zip(seeds, ps, strict=True))
            seed_test = _seed_test(base, reference, level, rest, x, y)
            out.append(
                LevelCell(factor, base, level, reference, within, *rest, matched, to_end,
                          comparison, seed_test)
            )  # fmt: skip
    adjusted = with_holm([c.comparison for c in out])
    seed_iter = iter(seeds_with_holm([c.seeds for c in out if c.seeds is not None]))
    return [
        _with(c, comp, next(seed_iter) if c.seeds is not None else None)
        for c, comp in zip(out, adjusted, strict=True)
    ]


def _with(c: LevelCell, comparison: Comparison, seeds: SeedComparison | None) -> LevelCell:
    d = comparison.difference.value
    significant = not math.isnan(comparison.p_holm) and comparison.p_holm < ALPHA
    verdict = INCONCLUSIVE if not significant or d == 0 else (REDUCES if d < 0 else RAISES)
    return replace(c, comparison=comparison, seeds=seeds, verdict=verdict)


def _stack(cells: list[CellLabels]) -> CellLabels:
    """The labels of several runs' cells as one, each run's units kept apart."""
    key = cells[0].key
    out = CellLabels(CellKey(f"{len(cells)} runs", *key[1:]))
    for k, cell in enumerate(cells):
        for (prompt, sample), v in cell.values.items():
            out.values[(prompt, k * _PAIR_STRIDE + sample)] = v
        out.errors |= {(p, k * _PAIR_STRIDE + s) for p, s in cell.errors}
    return out


def _seed_test(
    base: str, reference: str, level: str, rest: tuple, x: list[float], y: list[float]
) -> SeedComparison | None:
    """The level's runs against the reference's over seeds (None with fewer than 2 pairs)."""
    if len(x) < 2:
        return None
    diff = statistics.fmean(y) - statistics.fmean(x)
    perm, welch = permutation_test(x, y), welch_t(x, y)
    return SeedComparison(
        base, reference, level, None, *rest, len(x), len(y), diff, cohens_d(x, y), perm, welch,
        math.nan,
    )  # fmt: skip


def _stability(cells: list[LevelCell]) -> list[LevelStability]:
    groups: dict[tuple, list[LevelCell]] = defaultdict(list)
    for c in cells:
        groups[(c.factor, c.base, c.level, c.reference, c.within)].append(c)
    out = []
    for key, cs in sorted(groups.items()):
        diffs = [c.comparison.difference.value for c in cs]
        out.append(
            LevelStability(*key, len(cs), sum(c.verdict == REDUCES for c in cs),
                           sum(c.verdict == RAISES for c in cs), min(diffs), max(diffs))
        )  # fmt: skip
    return out


def _prices(
    factor: str,
    rates: Sequence[CellRate],
    runs: list[RunView],
    anchors: dict[str, int],
    acc: dict[str, float],
    level_of: Callable[[RunView], str],
    within_of: Callable[[RunView], str],
) -> list[LevelPrice]:
    values: dict[str, list[tuple[tuple, float]]] = defaultdict(list)
    for r in rates:
        if r.metric in PRICE_METRICS and not math.isnan(r.value):
            values[r.model.model_key].append(((r.metric, r.benchmark, r.judge, r.format), r.value))
    groups: dict[tuple, list[RunView]] = defaultdict(list)
    for run in runs:
        groups[(run.base, level_of(run), within_of(run))].append(run)
    out = []
    for (base, level, within), mine in sorted(groups.items()):
        reached = [run for run in mine if run.run_id in anchors]
        sums: dict[tuple, list[float]] = defaultdict(list)
        for run in reached:
            for cell, v in values[run.checkpoints[anchors[run.run_id]]]:
                sums[cell].append(v)
        accs = [acc[run.checkpoints[anchors[run.run_id]]] for run in reached]
        best = [acc[k] for run in mine for k in run.checkpoints.values() if k in acc]
        out.append(
            LevelPrice(factor, base, level, within, len(mine), len(reached),
                       tuple(sorted(anchors[run.run_id] for run in reached)),
                       statistics.fmean(accs) if accs else math.nan,
                       max(best, default=math.nan),
                       {k: statistics.fmean(v) for k, v in sorted(sums.items())})
        )  # fmt: skip
    return out


def _missed(
    runs: list[RunView],
    anchors: dict[str, int],
    acc: dict[str, float],
    level_of: Callable[[RunView], str],
) -> dict[str, list[Missed]]:
    out: dict[str, list[Missed]] = defaultdict(list)
    for run in runs:
        if run.run_id not in anchors:
            best = max((acc[k] for k in run.checkpoints.values() if k in acc), default=math.nan)
            out[level_of(run)].append(Missed(run.run_id, run.setting, run.seed, best))
    return dict(out)
