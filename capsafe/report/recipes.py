"""The report's "Recipes at matched capability" section and its first-screen summary line.

Pure: analyses in, markup out (capsafe.analysis.recipes computes everything shown).

    html = recipes_section(analyses)       # tables, figures, CSVs
    line = recipes_summary(analyses)       # one line per recipe for the summary
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from capsafe.analysis.analyses import ReportAnalyses
from capsafe.analysis.labels import RunView
from capsafe.analysis.recipes import INCONCLUSIVE, LevelCell, LevelComparison, LevelPrice
from capsafe.report.export import csv_link
from capsafe.report.figures_recipes import recipe_epochs_figure, recipe_frontier_figure
from capsafe.report.markup import esc, number, pct, pp, table, text
from capsafe.report.sections import img, missing


def _p(p: float) -> str:
    if math.isnan(p):
        return "–"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def _ci(c: LevelCell) -> str:
    d = c.comparison.difference
    return f"{pp(d.value)} [{100 * d.ci_low:+.1f}, {100 * d.ci_high:+.1f}]"


def _matched(c: LevelCell) -> str:
    end = " (end)" if c.to_end else ""
    return ", ".join(f"s{seed}: e{mine} vs e{ref}{end}" for seed, mine, ref in c.pairs)


def recipes_summary(a: ReportAnalyses) -> str:
    """The first-screen line: each recipe's verdict against the baseline and its stability."""
    r = a.recipes
    if r is None:
        return ""
    items = []
    for s in r.stability:
        cells = [c for c in r.cells if (c.level, c.base, c.within) == (s.level, s.base, s.within)]
        best = min(cells, key=lambda c: c.comparison.p_holm)
        items.append(
            f"<li><b>{esc(s.level)}</b> vs {esc(s.reference)} ({esc(s.within)}): "
            f"{esc(s.verdict)}; change {pp(s.low)} to {pp(s.high)} over {s.n_cells} "
            f"benchmark × judge × format cells (most significant: {esc(best.benchmark)} / "
            f"{esc(best.judge)}, {_ci(best)}, Holm p {_p(best.comparison.p_holm)})</li>"
        )
    missed = sum(len(v) for v in r.missed.values())
    tail = f" {missed} run(s) never reached the target (listed in the section)." if missed else ""
    return (
        "<h3>Recipes at matched capability</h3>"
        f"<ul>{''.join(items)}</ul><p class='note'>Each recipe's runs against the "
        f"{esc(r.reference)} runs of the same seed and grid point, at each run's first epoch "
        f"reaching the capability target.{esc(tail)} See "
        "<a href='#recipes'>Recipes at matched capability</a>.</p>"
    )


def recipes_section(a: ReportAnalyses, runs: Sequence[RunView]) -> str:
    """runs: labels.run_views of the same rows (each run with its own checkpoints)."""
    r = a.recipes
    if r is None:
        return missing(a.notes.get("recipes", "No recipes to compare."))
    out = [
        f"<p>Target: {esc(a.anchoring.target if a.anchoring else '')}. Each recipe against "
        f"<b>{esc(r.reference)}</b>, at each run's first checkpoint reaching the target, paired "
        "with the reference run of the same base, grid point and seed. Paired on prompts: exact "
        "McNemar for one pair of runs, else per-prompt means over the pairs and a paired "
        "bootstrap; CIs are paired bootstrap over prompts; Holm over every recipe × cell. Across "
        "seeds: permutation test on the anchored runs' rates (Holm). A verdict needs Holm "
        "p &lt; 0.05 on the paired test. A stopping recipe (stop_at_target) is set against the "
        "reference trained to the end (marked “(end)”): up to its stop it trains exactly what "
        "the reference trains, so at the target the two are one model.</p>",
        "<h3>Change against the reference, per cell</h3>",
        _cells_table(r.cells, "recipes_vs_baseline"),
        "<h3>Does each verdict hold across benchmarks, judges and formats?</h3>",
        _stability_table(r),
        "<h3>The price of each recipe</h3>",
        _price_table(r.prices, "recipe_price"),
        _missed(r),
    ]
    if a.capability is not None and a.safety_metric is not None:
        out.append(
            img(
                recipe_frontier_figure(a.rates, runs, a.capability, a.safety_metric),
                "safety against capability per recipe",
                "Each recipe's checkpoints, mean over its runs per epoch (accuracy on "
                f"{esc(a.capability)}, {esc(a.safety_metric)} rate), joined in epoch order from "
                "the base (star); one colour per recipe.",
            )
        )
        out.append(
            img(
                recipe_epochs_figure(a.rates, runs, a.capability, a.safety_metric),
                "capability and safety by epoch per recipe",
                "Mean over each recipe's runs by epoch; epochs continue across the rounds of a "
                "multi-round recipe, whose round boundaries are the dotted lines.",
            )
        )
    s = a.settings_matched
    if s is not None:
        out += [
            "<h3>Grid points against each other at matched capability</h3>",
            _cells_table(s.cells, "settings_matched"),
            _stability_table(s),
        ]
    return "".join(out)


def _cells_table(cells: Sequence[LevelCell], name: str) -> str:
    header = ["level", "vs", "within", "base", "benchmark", "judge", "format",
              "matched epochs", "change [95% CI]", "test", "Holm p", "across seeds Holm p",
              "verdict"]  # fmt: skip
    rows, csv_rows = [], []
    for c in cells:
        seeds = _p(c.seeds.p_holm) if c.seeds else "– (1 seed)"
        rows.append([
            text(c.level), text(c.reference), text(c.within), text(c.base), text(c.benchmark),
            text(c.judge), text(c.format), text(_matched(c)), number(_ci(c)),
            text(c.comparison.test.method), number(_p(c.comparison.p_holm)), number(seeds),
            text(c.verdict),
        ])  # fmt: skip
        d = c.comparison.difference
        csv_rows.append([c.level, c.reference, c.within, c.base, c.benchmark, c.judge, c.format,
                         _matched(c), d.value, d.ci_low, d.ci_high, c.comparison.test.method,
                         c.comparison.test.p_value, c.comparison.p_holm,
                         c.seeds.p_holm if c.seeds else None, c.verdict])  # fmt: skip
    csv_header = header[:8] + ["change", "ci_low", "ci_high", "test", "p", "p_holm",
                               "seeds_p_holm", "verdict"]  # fmt: skip
    return table([text(h) for h in header], rows) + csv_link(name, csv_header, csv_rows)


def _stability_table(r: LevelComparison) -> str:
    header = ["level", "vs", "within", "base", "cells", "reduces", "raises", "inconclusive",
              "change range", "verdict"]  # fmt: skip
    rows = [
        [text(s.level), text(s.reference), text(s.within), text(s.base), number(str(s.n_cells)),
         number(str(s.n_reduces)), number(str(s.n_raises)),
         number(str(s.n_cells - s.n_reduces - s.n_raises)), number(f"{pp(s.low)} – {pp(s.high)}"),
         text(s.verdict)]
        for s in r.stability
    ]  # fmt: skip
    return table([text(h) for h in header], rows, caption=f"'{INCONCLUSIVE}' cells: Holm p ≥ 0.05")


def _price_table(prices: Sequence[LevelPrice], name: str) -> str:
    header = ["level", "within", "base", "reached target", "epoch at target",
              "accuracy at target", "best accuracy", "over-refusal at target",
              "incoherent at target"]  # fmt: skip
    rows, csv_rows = [], []
    for p in prices:
        over = _mean_of(p, "over_refusal")
        incoherent = _mean_of(p, "incoherent")
        epochs = ", ".join(f"e{e}" for e in p.epochs) or "–"
        rows.append([
            text(p.level), text(p.within), text(p.base), number(f"{p.n_reached}/{p.n_runs}"),
            text(epochs), number(pct(p.accuracy)), number(pct(p.best_accuracy)),
            number(pct(over)), number(pct(incoherent)),
        ])  # fmt: skip
        for (metric, bench, judge, fmt), v in p.means.items():
            csv_rows.append([p.level, p.within, p.base, p.n_reached, p.n_runs, epochs, metric,
                             bench, judge, fmt, v])  # fmt: skip
    csv_header = ["level", "within", "base", "reached", "runs", "epochs", "metric", "benchmark",
                  "judge", "format", "mean_at_target"]  # fmt: skip
    caption = ("over-refusal: mean over the benign look-alike cells (every refusal judge); "
               "incoherent: the coherence judge's share on safety prompts")  # fmt: skip
    return table([text(h) for h in header], rows, caption=caption) + csv_link(
        name, csv_header, csv_rows
    )


def _mean_of(p: LevelPrice, metric: str) -> float:
    found = [v for (m, *_), v in p.means.items() if m == metric]
    return sum(found) / len(found) if found else math.nan


def _missed(r: LevelComparison) -> str:
    items = [
        f"<li><b>{esc(level)}</b>: {esc(m.setting)} seed {esc(m.seed)} (best accuracy "
        f"{pct(m.best_accuracy)})</li>"
        for level, ms in sorted(r.missed.items())
        for m in ms
    ]
    items += [f"<li>{esc(u)}</li>" for u in r.unpaired]
    if not items:
        return "<p>Every run reached the capability target and has a reference run to pair.</p>"
    return (
        "<h3>Runs left out of the comparison</h3><p>These runs never reached the target, or "
        f"have no reference run at it; they are not compared.</p><ul>{''.join(items)}</ul>"
    )
