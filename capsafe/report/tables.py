"""The report's tables of numbers: spread over seeds, per checkpoint, judge parse errors and
truncated responses.

One table per prompt format, because every rate depends on it; columns are (metric,
benchmark, judge or task). The rates are the cell rates every other section shows
(capsafe.analysis.metrics: bootstrap CIs over prompts), and the spreads their spread over
fine-tuning seeds. Rates are shares of prompts shown as percentages; spreads over seeds are
in percentage points; judge-based rates sit beside their parse errors.

    a = run_analyses(rows)
    html = spread_tables(a.rates, a.seed_spreads) + checkpoint_tables(a.rates)
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from capsafe.analysis.labels import BASE_SETTING, SAFETY_METRIC, ModelInfo
from capsafe.analysis.metrics import CellRate
from capsafe.analysis.rows import ExperimentRows
from capsafe.analysis.variance import FactorSpread
from capsafe.records import LENGTH
from capsafe.report.markup import Cell, esc, number, pct, pct_range, pp, table, text
from capsafe.store import JudgmentRow

# The metrics these tables show, in column order; the rates table holds every metric.
METRIC_NAMES = {
    "accuracy": "accuracy",
    SAFETY_METRIC: "harmful compliance",
    "over_refusal": "over-refusal",
    "incoherent": "incoherent",
    "truncated": "truncated (token limit)",  # cut, not degenerate: never counted as incoherent
    "empty": "empty response",  # left out of every safety rate; shown where any occurs
    "too_long": "too long (not generated)",  # prompt + answer over the context; where any
}


_IF_ANY = ("empty", "too_long")  # columns shown only where some row has one


class Column(NamedTuple):
    metric: str
    benchmark: str
    judge: str  # the judge, or for accuracy the task that scored it


class Row(NamedTuple):
    base: str
    task: str | None  # the fine-tuning task; None for a base model
    setting: str
    epoch: int


def _shown(rates: Sequence[CellRate], fmt: str) -> list[CellRate]:
    occurs = {m for m in _IF_ANY for r in rates if r.metric == m and r.value > 0}
    return [r for r in rates if r.format == fmt and r.metric in METRIC_NAMES
            and (r.metric not in _IF_ANY or r.metric in occurs)]  # fmt: skip


def columns(rates: Sequence[CellRate], fmt: str) -> list[Column]:
    found = {Column(r.metric, r.benchmark, r.judge) for r in _shown(rates, fmt)}
    order = list(METRIC_NAMES)
    return sorted(found, key=lambda c: (order.index(c.metric), c.benchmark, c.judge))


def _header(col: Column) -> Cell:
    name = METRIC_NAMES[col.metric]
    role = "task" if col.metric == "accuracy" else "judge"
    return number(
        f"{esc(name)}<span class='sub'>{esc(col.benchmark)}</span>"
        f"<span class='sub'>{role}: {esc(col.judge)}</span>"
    )


def _parse_errors(errors: int, n: int) -> str:
    share = pct(errors / (n + errors)) if n + errors else "–"
    klass = "perr" if errors else "perr zero"
    noun = "parse error" if errors == 1 else "parse errors"
    return f"<span class='sub {klass}'>{errors} {noun} ({share})</span>"


def formats(rates: Sequence[CellRate]) -> list[str]:
    return sorted({r.format for r in rates if r.metric in METRIC_NAMES})


def _row(m: ModelInfo) -> Row:
    return Row(m.base, m.task, m.setting, m.epoch)


def _row_order(r: Row) -> tuple:
    return (r.base, r.setting != BASE_SETTING, r.task or "", r.setting, r.epoch)


def _row_heads(r: Row, several_tasks: bool) -> list[Cell]:
    task = [text(r.task or "–")] if several_tasks else []
    return [text(r.base), *task, text(r.setting), number(str(r.epoch))]


def spread_tables(rates: Sequence[CellRate], spreads: Sequence[FactorSpread]) -> str:
    """Per base / setting / epoch: mean ± std over seeds, min-max, n seeds; a table per format.

    rates: cell rates pooled over sample seeds; spreads: spread_over(rates, "seed")."""
    errors: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])  # parse errors, labels
    for r in rates:
        e = errors[(_row(r.model), r.metric, r.benchmark, r.judge, r.format)]
        e[0] += r.parse_errors
        e[1] += r.n_labels
    found = {}
    for s in spreads:
        if s.factor == "seed" and s.level("metric") in METRIC_NAMES:
            task = s.level("task")
            row = Row(str(s.level("base")), None if task is None else str(task),
                      str(s.level("setting")), int(s.level("epoch")))  # fmt: skip
            found[(row, s.level("metric"), s.level("benchmark"), s.level("judge"),
                   s.level("format"))] = s  # fmt: skip
    several_tasks = len({r.model.task for r in rates if r.model.task}) > 1
    out = []
    for fmt in formats(rates):
        cols = columns(rates, fmt)
        keys = sorted({k[0] for k in found if k[4] == fmt}, key=_row_order)
        rows = []
        for row in keys:
            cells = _row_heads(row, several_tasks)
            for c in cols:
                k = (row, c.metric, c.benchmark, c.judge, fmt)
                cell = _spread_cell(found.get(k), row.setting == BASE_SETTING)
                if c.metric != "accuracy" and k in errors:
                    cell += _parse_errors(*errors[k])
                cells.append(number(cell))
            rows.append(cells)
        task = [text("task")] if several_tasks else []
        headers = [text("base"), *task, text("setting"), number("epoch")]
        out.append(table(headers + [_header(c) for c in cols], rows,
                         caption=f"format: {fmt} — mean ± std over seeds"))  # fmt: skip
    return (
        "".join(out)
        or "<p class='missing'>No rates to show: the store has no scores or judgments.</p>"
    )


def _spread_cell(s: FactorSpread | None, is_base: bool) -> str:
    if s is None:
        return "–"
    if is_base:
        return f"<b>{pct(s.mean)}</b><span class='sub'>base model</span>"
    std = pp(s.std) if s.n_levels > 1 else "–"
    seeds = f"{s.n_levels} seed{'s' * (s.n_levels != 1)}"
    return (
        f"<b>{pct(s.mean)}</b> ± {std}"
        f"<span class='sub'>min–max {pct_range(s.min, s.max)} · {seeds}</span>"
    )


def checkpoint_tables(rates: Sequence[CellRate]) -> str:
    """Per model (base or run x epoch): each rate with its bootstrap 95% CI over prompts, the
    number of prompts and the parse errors.

    rates: cell rates pooled over sample seeds."""
    out = []
    for fmt in formats(rates):
        shown = _shown(rates, fmt)
        found = {(r.model.model_key, r.metric, r.benchmark, r.judge): r for r in shown}
        cols = columns(rates, fmt)
        models = sorted({r.model for r in shown}, key=lambda m: (
            m.base, not m.is_base, m.task or "", m.setting, m.seed or 0, m.run_id or "", m.epoch
        ))  # fmt: skip
        rows = []
        for m in models:
            row = [
                text(m.base),
                text(m.setting),
                text(m.run_id or "base model"),
                number("–" if m.seed is None else str(m.seed)),
                number(str(m.epoch)),
            ]
            for c in cols:
                r = found.get((m.model_key, c.metric, c.benchmark, c.judge))
                row.append(number(_rate_cell(r)))
            rows.append(row)
        headers = [text("base"), text("setting"), text("run"), number("seed"), number("epoch")]
        headers += [_header(c) for c in cols]
        caption = f"format: {fmt} — rate [bootstrap 95% CI over prompts] · prompts"
        out.append(table(headers, rows, caption=caption))
    return "".join(out) or "<p class='missing'>No rates to show.</p>"


def _rate_cell(r: CellRate | None) -> str:
    if r is None:
        return "–"
    e = r.estimate
    n = f"{e.n} prompt{'s' * (e.n != 1)}"
    cell = f"<b>{pct(e.value)}</b><span class='sub'>[{pct_range(e.ci_low, e.ci_high)}] {n}</span>"
    if r.metric != "accuracy":
        cell += _parse_errors(r.parse_errors, r.n_labels)
    return cell


def parse_error_table(judgments: Sequence[JudgmentRow]) -> str:
    """Per judge and version: how many judgments could not be parsed."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for j in judgments:
        c = counts[(j.judge, j.judge_version)]
        c[0] += 1
        c[1] += int(j.parse_error)
    rows = [
        [text(judge), text(version), number(str(n)), number(str(e)), number(pct(e / n))]
        for (judge, version), (n, e) in sorted(counts.items())
    ]
    headers = [
        text("judge"),
        text("version"),
        number("judgments"),
        number("parse errors"),
        number("share"),
    ]
    if not rows:
        return "<p class='missing'>No judgments in the store.</p>"
    return table(headers, rows, caption="Judge outputs that could not be parsed (all prompt sets)")


def truncation_table(rows: ExperimentRows) -> str:
    """Per prompt set: the share of responses cut at their token limit (finish_reason
    "length"), for the bases and the fine-tuned checkpoints apart: a judge reads a cut
    answer as if it were whole, so a large share means the limit is too low for the set."""
    fine_tuned = {m.model_key for m in rows.models if m.run_id is not None}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # base n, cut; ft n, cut
    limits: dict[str, set[int]] = defaultdict(set)
    for g in rows.generations:
        if g.finish_reason not in (LENGTH, "eos"):
            continue  # not generated (too long, log-likelihood scored): nothing to cut
        c = counts[g.prompt_set]
        at = 2 if g.model_key in fine_tuned else 0
        c[at] += 1
        c[at + 1] += g.finish_reason == LENGTH
        limits[g.prompt_set].add(json.loads(g.decoding).get("max_new_tokens", 0))
    if not counts:
        return ""

    def share(n: int, cut: int) -> Cell:
        return number(f"{pct(cut / n)} <span class='muted'>({cut}/{n})</span>" if n else "–")

    body = [
        [
            text(name),
            number(", ".join(map(str, sorted(limits[name])))),
            share(c[0], c[1]),
            share(c[2], c[3]),
        ]  # fmt: skip
        for name, c in sorted(counts.items())
    ]
    headers = [text("prompt set"), number("max new tokens"), number("bases"),
               number("fine-tuned")]  # fmt: skip
    return table(headers, body, caption="Responses cut at their token limit, per prompt set")
