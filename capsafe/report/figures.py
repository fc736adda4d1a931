"""The report's headline figure: capability and safety by epoch (pure: rates in, Figure out).

Figures are built on the Agg canvas directly (no pyplot), so nothing global changes and
nothing is shown; the caller saves or embeds them. The rates are the cell rates every
other section shows (capsafe.analysis.metrics), and the spreads their spread over
fine-tuning seeds (capsafe.analysis.variance.spread_over(rates, "seed")).

    a = run_analyses(rows)
    fig = capability_safety_figure(a.rates, a.seed_spreads, judge="keyword_refusal",
                                   format="default", harmful_benchmarks=["organism/harmful"],
                                   task_benchmark="organism/capability_test")
    fig.savefig("capability_safety.png")
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import NamedTuple

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from capsafe.analysis.labels import BASE_SETTING, SAFETY_METRIC
from capsafe.analysis.metrics import CellRate
from capsafe.analysis.variance import FactorSpread

ACCURACY = "accuracy"
SAFETY_NAME = "harmful compliance"  # what the safety metric (unsafe) is called on the figure
ACCURACY_COLOUR = "#1f77b4"
# Harmful benchmarks get warm colours, distinct from the accuracy blue.
HARMFUL_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
GREY = "#555555"


def capability_safety_figure(
    rates: Sequence[CellRate],
    spreads: Sequence[FactorSpread],
    *,
    judge: str,
    format: str,
    harmful_benchmarks: Sequence[str],
    task_benchmark: str,
) -> Figure:
    """Task accuracy and harmful compliance (shares of prompts, 0-1) against epoch.

    One column per fine-tuning task and hyperparameter setting and a pair of rows per base
    model: accuracy on `task_benchmark` on top, harmful compliance (the `unsafe` metric) on
    each of `harmful_benchmarks` as judged by `judge` below, both under prompt format
    `format`. Lines are means over seeds starting from the base model at epoch 0; shaded
    bands span min-max over seeds; the dashed line is the base model's value.
    """
    bases = sorted({r.model.base for r in rates}) or ["(no data)"]
    runs = [s for s in spreads if s.factor == "seed" and s.level("setting") != BASE_SETTING]
    columns = sorted({(_task(s), str(s.level("setting"))) for s in runs}) or [(None, BASE_SETTING)]
    several_tasks = len({task for task, _ in columns}) > 1
    task_judge = _task_judge(rates, task_benchmark, format)
    nrows, ncols = 2 * len(bases), len(columns)
    fig = Figure(figsize=(3.6 * ncols + 1.2, 2.5 * nrows + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharex="col", sharey=True, squeeze=False)
    colours = {
        b: HARMFUL_COLOURS[i % len(HARMFUL_COLOURS)] for i, b in enumerate(harmful_benchmarks)
    }

    for i, base in enumerate(bases):
        for j, (task, setting) in enumerate(columns):
            top, bottom = axes[2 * i][j], axes[2 * i + 1][j]
            mine = [s for s in runs if (_task(s), s.level("setting")) == (task, setting)]
            last_epoch = max((int(s.level("epoch")) for s in mine), default=0)
            column = _Column(base, task, setting, format)
            plotted = _series(
                top, rates, mine, column, ACCURACY, task_benchmark, task_judge, ACCURACY_COLOUR
            )
            plotted_harm = [
                _series(bottom, rates, mine, column, SAFETY_METRIC, bench, judge, colours[bench])
                for bench in harmful_benchmarks
            ]
            for ax, any_data in ((top, plotted), (bottom, any(plotted_harm))):
                _style(ax, any_data, last_epoch)
            n = max((s.n_levels for s in mine if s.level("base") == base), default=0)
            seeds = "" if setting == BASE_SETTING else f"\n{n} seed{'s' * (n != 1)}"
            name = "base model only (no fine-tuning runs)" if setting == BASE_SETTING else setting
            if several_tasks and task:
                name = f"{task} · {name}"
            top.set_title((f"{base} · " if len(bases) > 1 else "") + name + seeds, fontsize=9)
            bottom.set_xlabel("epoch (0 = base model)" if i == len(bases) - 1 else "")
        axes[2 * i][0].set_ylabel(_row_label(base, len(bases), "task accuracy"))
        axes[2 * i + 1][0].set_ylabel(_row_label(base, len(bases), SAFETY_NAME))

    # A new line for judge and format: judge labels with their arguments run long.
    fig.suptitle(f"Capability and safety by epoch\njudge: {judge}, format: {format}", fontsize=10)
    fig.legend(
        handles=_legend_handles(task_benchmark, colours),
        loc="outside lower center",
        ncol=2 if ncols == 1 else 4,
        fontsize=8,
        frameon=False,
    )
    return fig


def figure_png_base64(fig: Figure, dpi: int = 110) -> str:
    """The figure as a base64 PNG, for an <img src="data:image/png;base64,..."> tag."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


class _Column(NamedTuple):
    base: str
    task: str | None  # the fine-tuning task; None for a base-only column
    setting: str
    format: str


def _task(s: FactorSpread) -> str | None:
    task = s.level("task")
    return None if task is None else str(task)


def _task_judge(rates: Sequence[CellRate], bench: str, fmt: str) -> str | None:
    # Accuracy cells carry the task scorer's name as their judge; if two tasks scored the
    # same benchmark, plot the first rather than mixing them into one line.
    names = {r.judge for r in rates if (r.metric, r.benchmark, r.format) == (ACCURACY, bench, fmt)}
    return min(names) if names else None


def _series(
    ax: Axes,
    rates: Sequence[CellRate],
    spreads: Sequence[FactorSpread],
    column: _Column,
    metric: str,
    bench: str,
    judge: str | None,
    colour: str,
) -> bool:
    """Plot one metric's mean line, min-max band and base line; False when there is no data.

    spreads: the column's spreads over seeds (fine-tuned runs of one task and setting)."""
    wanted = (column.base, metric, bench, judge, column.format)
    by_epoch = {
        int(s.level("epoch")): s
        for s in spreads
        if tuple(s.level(f) for f in ("base", "metric", "benchmark", "judge", "format")) == wanted
    }
    base_value = next(
        (
            r.value
            for r in rates
            if r.model.is_base
            and (r.model.base, r.metric, r.benchmark, r.judge, r.format) == wanted
            and r.estimate.n > 0
        ),
        None,
    )
    epochs = sorted(e for e in by_epoch if e > 0)
    xs = ([0] if base_value is not None else []) + epochs
    if not xs:
        return False
    head = [base_value] if base_value is not None else []
    mean = head + [by_epoch[e].mean for e in epochs]
    low = head + [by_epoch[e].min for e in epochs]
    high = head + [by_epoch[e].max for e in epochs]
    ax.fill_between(xs, low, high, color=colour, alpha=0.18, linewidth=0)
    ax.plot(xs, mean, color=colour, marker="o", markersize=4, linewidth=1.8)
    if base_value is not None:
        ax.axhline(base_value, color=colour, linestyle="--", linewidth=1, alpha=0.8)
    return True


def _style(ax: Axes, any_data: bool, last_epoch: int) -> None:
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(-0.25, max(1, last_epoch) + 0.25)  # a base-only column still shows epoch 1
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if not any_data:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color=GREY)


def _row_label(base: str, n_bases: int, what: str) -> str:
    label = f"{what}\n(share of prompts)"
    return f"{base}\n{label}" if n_bases > 1 else label


def _legend_handles(task_benchmark: str, colours: dict[str, str]) -> list[Line2D | Patch]:
    handles: list[Line2D | Patch] = []
    if task_benchmark:
        handles.append(
            Line2D(
                [], [], color=ACCURACY_COLOUR, linewidth=1.8, label=f"accuracy: {task_benchmark}"
            )
        )
    handles += [
        Line2D([], [], color=c, linewidth=1.8, label=f"{SAFETY_NAME}: {b}")
        for b, c in colours.items()
    ]
    handles += [
        Line2D([], [], color=GREY, marker="o", markersize=4, label="mean over seeds"),
        Patch(color=GREY, alpha=0.25, label="min–max over seeds"),
        Line2D([], [], color=GREY, linestyle="--", linewidth=1, label="base model"),
    ]
    return handles
