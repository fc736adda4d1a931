"""Figures of training recipes side by side (pure: rates in, Figure out).

    runs = run_views(rows)
    fig = recipe_frontier_figure(rates, runs, "organism/capability_test", safety="unsafe")
    fig = recipe_epochs_figure(rates, runs, "organism/capability_test", safety="unsafe")

Each recipe is one colour: the mean over its runs at each epoch (the safety rate averaged
over benchmarks). Bases are never pooled: the first base's panels are drawn (the tables and
CSVs hold every base).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

from matplotlib.figure import Figure

from capsafe.analysis.labels import RunView
from capsafe.analysis.metrics import CellRate
from capsafe.report.figures_safety import MAX_PANELS, _figure, _percent

# One colour per recipe: matplotlib's tab10 (an experiment rarely compares more; beyond ten
# the colours repeat and the legend still names each line).
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip

Curve = dict[int, tuple[float, float]]  # epoch -> (mean accuracy, mean safety rate)


def recipe_curves(
    rates: Sequence[CellRate],
    runs: Sequence[RunView],
    capability: str,
    safety: str,
    judge: str,
    fmt: str,
    base: str,
) -> tuple[dict[str, Curve], tuple[float, float] | None, dict[str, tuple[int, ...]]]:
    """Per recipe, epoch -> (accuracy, safety rate) means over its runs; the base's point;
    per recipe, its round boundaries (the last epoch of each round but the last). Runs are
    read with their own checkpoints (a checkpoint two runs share counts for both)."""
    acc: dict[str, float] = {}
    harm: dict[str, list[float]] = defaultdict(list)
    base_key = None
    for r in rates:
        if math.isnan(r.value) or r.format != fmt or r.model.base != base:
            continue
        if r.model.is_base:
            base_key = r.model.model_key
        if r.metric == "accuracy" and r.benchmark == capability:
            acc[r.model.model_key] = r.value
        elif r.metric == safety and r.judge == judge:
            harm[r.model.model_key].append(r.value)

    def point(key: str | None) -> tuple[float, float] | None:
        if key not in acc or key not in harm:
            return None
        return acc[key], statistics.fmean(harm[key])

    points: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    rounds = {}
    for run in runs:
        if run.base != base:
            continue
        for epoch, key in run.checkpoints.items():
            if (p := point(key)) is not None:
                points[run.recipe][epoch].append(p)
        if len(run.round_ends) > 1:
            rounds[run.recipe] = run.round_ends[:-1]
    curves = {
        recipe: {
            e: (statistics.fmean(p[0] for p in ps), statistics.fmean(p[1] for p in ps))
            for e, ps in sorted(by_epoch.items())
        }
        for recipe, by_epoch in points.items()
    }
    return curves, point(base_key), rounds


def _cells(rates: Sequence[CellRate], safety: str) -> list[tuple[str, str, str]]:
    found = sorted({(r.model.base, r.judge, r.format) for r in rates if r.metric == safety})
    first = found[0][0] if found else None
    return [c for c in found if c[0] == first][:MAX_PANELS]


def recipe_frontier_figure(
    rates: Sequence[CellRate], runs: Sequence[RunView], capability: str, safety: str
) -> Figure:
    """Safety against capability per recipe; one panel per judge x format of the first base."""
    cells = _cells(rates, safety)
    fig, axes = _figure(max(1, len(cells)), width=4.0, height=3.8)
    for ax, (base, judge, fmt) in zip(axes, cells, strict=False):
        curves, base_point, _ = recipe_curves(rates, runs, capability, safety, judge, fmt, base)
        for i, (recipe, curve) in enumerate(sorted(curves.items())):
            path = ([base_point] if base_point else []) + list(curve.values())
            ax.plot([p[0] for p in path], [p[1] for p in path], marker="o", markersize=3,
                    linewidth=1.2, color=COLOURS[i % len(COLOURS)], label=recipe)  # fmt: skip
        if base_point:
            ax.plot([base_point[0]], [base_point[1]], marker="*", markersize=12, color="black",
                    linestyle="none", label="base")  # fmt: skip
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        _percent(ax)
        _percent(ax, "x")
        ax.set_xlabel(f"accuracy: {capability}", fontsize=8)
        ax.set_title(f"{base}\njudge: {judge}, format: {fmt}", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    axes[0].set_ylabel(f"{safety} rate (mean over benchmarks)")
    return fig


def recipe_epochs_figure(
    rates: Sequence[CellRate], runs: Sequence[RunView], capability: str, safety: str
) -> Figure:
    """Accuracy, then each judge's safety rate, by epoch per recipe; round boundaries dotted."""
    cells = _cells(rates, safety)[: MAX_PANELS - 1]
    fig, axes = _figure(1 + max(1, len(cells)), width=3.6, height=3.2)
    panels: list[tuple[str, int]] = [("accuracy", 0)] + [(safety, 1)] * len(cells)
    for k, (ax, (what, side)) in enumerate(zip(axes, panels, strict=False)):
        base, judge, fmt = cells[max(0, k - 1)] if cells else ("", "", "")
        curves, base_point, rounds = recipe_curves(
            rates, runs, capability, safety, judge, fmt, base
        )
        for i, (recipe, curve) in enumerate(sorted(curves.items())):
            colour = COLOURS[i % len(COLOURS)]
            xs = [0] + list(curve) if base_point else list(curve)
            ys = ([base_point[side]] if base_point else []) + [v[side] for v in curve.values()]
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, color=colour, label=recipe)
            for end in rounds.get(recipe, ()):
                ax.axvline(end + 0.5, color=colour, linestyle=":", linewidth=1)
        _percent(ax)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("epoch (0: base)", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        title = f"accuracy: {capability}" if k == 0 else f"{what}\njudge: {judge}, {fmt}"
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7, frameon=False)
    return fig
