"""The report's tables of numbers: spread over seeds, per checkpoint, and judge parse errors.

One table per prompt format, because every rate depends on it; columns are (metric,
benchmark, judge or task). Rates are shares of prompts shown as percentages; spreads
over seeds are in percentage points; judge-based rates sit beside their parse errors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from capsafe.analysis.rates import BASE_SETTING, MetricRow, SeedSpread
from capsafe.report.markup import Cell, esc, number, pct, pct_range, pp, table, text
from capsafe.store import JudgmentRow

METRIC_NAMES = {
    "accuracy": "accuracy",
    "harmful_compliance": "harmful compliance",
    "over_refusal": "over-refusal",
}
JUDGED = {"harmful_compliance", "over_refusal"}  # rates from judges, which can fail to parse


class Column(NamedTuple):
    metric: str
    benchmark: str
    judge: str  # the judge, or for accuracy the task that scored it


def _metric_order(metric: str) -> int:
    return list(METRIC_NAMES).index(metric) if metric in METRIC_NAMES else len(METRIC_NAMES)


def columns(metrics: Sequence[MetricRow], fmt: str) -> list[Column]:
    found = {Column(m.metric, m.benchmark, m.judge) for m in metrics if m.format == fmt}
    return sorted(found, key=lambda c: (_metric_order(c.metric), c.benchmark, c.judge))


def _header(col: Column) -> Cell:
    name = METRIC_NAMES.get(col.metric, col.metric)
    role = "judge" if col.metric in JUDGED else "task"
    return number(
        f"{esc(name)}<span class='sub'>{esc(col.benchmark)}</span>"
        f"<span class='sub'>{role}: {esc(col.judge)}</span>"
    )


def _parse_errors(errors: int, n: int) -> str:
    share = pct(errors / (n + errors)) if n + errors else "–"
    klass = "perr" if errors else "perr zero"
    noun = "parse error" if errors == 1 else "parse errors"
    return f"<span class='sub {klass}'>{errors} {noun} ({share})</span>"


def formats(metrics: Sequence[MetricRow]) -> list[str]:
    return sorted({m.format for m in metrics})


def spread_tables(metrics: Sequence[MetricRow], spreads: Sequence[SeedSpread]) -> str:
    """Per base / setting / epoch: mean ± std over seeds, min-max, n seeds; a table per format."""
    errors: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])  # parse errors, n judged
    for m in metrics:
        e = errors[(m.base, m.setting, m.epoch, m.metric, m.benchmark, m.judge, m.format)]
        e[0] += m.parse_errors
        e[1] += m.rate.n
    found = {
        (s.base, s.setting, s.epoch, s.metric, s.benchmark, s.judge, s.format): s for s in spreads
    }
    out = []
    for fmt in formats(metrics):
        cols = columns(metrics, fmt)
        keys = sorted(
            {(s.base, s.setting, s.epoch) for s in spreads if s.format == fmt},
            key=lambda k: (k[0], k[1] != BASE_SETTING, k[1], k[2]),
        )
        rows = []
        for base, setting, epoch in keys:
            row = [text(base), text(setting), number(str(epoch))]
            for c in cols:
                k = (base, setting, epoch, c.metric, c.benchmark, c.judge, fmt)
                cell = _spread_cell(found.get(k), setting == BASE_SETTING)
                if c.metric in JUDGED and k in errors:
                    cell += _parse_errors(*errors[k])
                row.append(number(cell))
            rows.append(row)
        headers = [text("base"), text("setting"), number("epoch")] + [_header(c) for c in cols]
        out.append(table(headers, rows, caption=f"format: {fmt} — mean ± std over seeds"))
    return (
        "".join(out)
        or "<p class='missing'>No rates to show: the store has no scores or judgments.</p>"
    )


def _spread_cell(s: SeedSpread | None, is_base: bool) -> str:
    if s is None:
        return "–"
    if is_base:
        return f"<b>{pct(s.mean)}</b><span class='sub'>base model</span>"
    std = pp(s.std) if s.n_seeds > 1 else "–"
    seeds = f"{s.n_seeds} seed{'s' * (s.n_seeds != 1)}"
    return (
        f"<b>{pct(s.mean)}</b> ± {std}"
        f"<span class='sub'>min–max {pct_range(s.min, s.max)} · {seeds}</span>"
    )


def checkpoint_tables(metrics: Sequence[MetricRow]) -> str:
    """Per model (base or run x epoch): each rate with its Wilson 95% CI, k/n and parse errors."""
    found = {
        (m.base, m.run_id, m.epoch, m.metric, m.benchmark, m.judge, m.format): m for m in metrics
    }
    out = []
    for fmt in formats(metrics):
        cols = columns(metrics, fmt)
        models = sorted(
            {(m.base, m.setting, m.run_id, m.seed, m.epoch) for m in metrics if m.format == fmt},
            key=lambda k: (k[0], k[2] is not None, k[1], k[3] or 0, k[2] or "", k[4]),
        )
        rows = []
        for base, setting, run_id, seed, epoch in models:
            row = [
                text(base),
                text(setting),
                text(run_id or "base model"),
                number("–" if seed is None else str(seed)),
                number(str(epoch)),
            ]
            for c in cols:
                m = found.get((base, run_id, epoch, c.metric, c.benchmark, c.judge, fmt))
                row.append(number(_rate_cell(m)))
            rows.append(row)
        headers = [text("base"), text("setting"), text("run"), number("seed"), number("epoch")]
        headers += [_header(c) for c in cols]
        out.append(table(headers, rows, caption=f"format: {fmt} — rate [Wilson 95% CI] k/n"))
    return "".join(out) or "<p class='missing'>No rates to show.</p>"


def _rate_cell(m: MetricRow | None) -> str:
    if m is None:
        return "–"
    r = m.rate
    ci = pct_range(r.ci_low, r.ci_high)
    cell = f"<b>{pct(r.value)}</b><span class='sub'>[{ci}] {r.k}/{r.n}</span>"
    if m.metric in JUDGED:
        cell += _parse_errors(m.parse_errors, r.n)
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
