"""An audit's result as plain-text tables, CSV rows and a self-contained HTML page (pure)."""

from __future__ import annotations

import csv
import io
import math

from capsafe.analysis.stats import Estimate
from capsafe.audit.run import AuditResult
from capsafe.report.markup import Cell, esc, number, table, text
from capsafe.report.style import CSS

METRICS = ("accuracy", "precision", "recall", "f1", "kappa")


def _fmt(e: Estimate) -> str:
    if math.isnan(e.value):
        # Items were scored but the metric has no value on them (kappa of a judge or of
        # humans that give one label, precision of a judge that never says positive).
        return "undefined" if e.n else "–"
    lo, hi = ("?" if math.isnan(x) else f"{x:.3f}" for x in (e.ci_low, e.ci_high))
    return f"{e.value:.3f} [{lo}, {hi}]"


def _kappa(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.3f}"


def judge_table(result: AuditResult, category: str | None = "all") -> list[list[str]]:
    """Header + rows of the per-judge metrics (one category, or all categories with None)."""
    header = ["judge", result.group_by, "n", "parse errors", *METRICS]
    rows = [
        [
            r.judge,
            r.category,
            str(r.n),
            str(r.parse_errors),
            *(_fmt(getattr(r, m)) for m in METRICS),
        ]
        for r in result.rows
        if category is None or r.category == category
    ]
    return [header, *rows]


def agreement_table(result: AuditResult) -> list[list[str]]:
    header = ["split", "items", "judge A", "judge B", "Cohen's kappa", "agreement", "n"]
    rows = []
    for s in result.agreement:
        for p in s.pairs:
            rows.append(
                [s.split, str(s.n_items), p.judge_a, p.judge_b, _kappa(p.kappa),
                 _kappa(p.agreement), str(p.n)]
            )  # fmt: skip
        rows.append(
            [s.split, str(s.n_items), "(all judges)", "Fleiss' kappa", _kappa(s.fleiss), "", ""]
        )
    return [header, *rows]


def as_text(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def as_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def summary_lines(result: AuditResult) -> list[str]:
    s = result.labelled
    lines = [
        f"labelled set {s.name}: {len(s.items)} items, dimension {s.dimension!r}"
        + (f", {s.dropped} dropped (annotator ties)" if s.dropped else ""),
    ]
    h = result.human
    if h is not None:
        kappa = "" if h.kappa is None else f"Cohen's kappa {_kappa(h.kappa)}, "
        lines.append(
            f"human annotators ({h.annotators}, on all {h.n_items} items, ties counted as "
            f"disagreements): {kappa}Krippendorff's alpha {_kappa(h.alpha)}"
        )
    lines += [f"skipped {j}: {why}" for j, why in result.skipped.items()]
    lines += [f"{j}: scored on 'harmful' by compliance (not refused)" for j in result.proxies]
    if s.token_limit:
        lines.append(
            "collected under a token limit: a response that stops mid-sentence counts as "
            "truncated, not incoherent"
        )
    for j, c in result.coherence.items():
        why = ", ".join(f"{k} {v}" for k, v in c.reasons.items())
        lines.append(
            f"{j}: {c.incoherent} of {c.n} incoherent ({c.incoherent / c.n:.1%}"
            + (f"; {why}" if why else "")
            + f"), {c.truncated} truncated (cut at the token limit)"
            if c.n
            else f"{j}: no labels"
        )
    if result.split_by:
        lines.append(f"agreement split by the {result.split_by!r} judge's coherence label")
    return lines


def _html_table(rows: list[list[str]], caption: str) -> str:
    numeric = {i for i, h in enumerate(rows[0]) if h in METRICS or h in ("n", "items")}

    def cell(i: int, v: str) -> Cell:
        return number(esc(v)) if i in numeric else text(v)

    return table(
        [text(h) for h in rows[0]],
        [[cell(i, v) for i, v in enumerate(r)] for r in rows[1:]],
        caption=caption,
    )


def as_html(result: AuditResult, command: str) -> str:
    """One offline page: summary, per-judge metrics (overall, per category), agreement."""
    parts = [
        f"<h1>Judge audit: {esc(result.labelled.name)}</h1>",
        "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in summary_lines(result)) + "</ul>",
        f"<p>Reproduce: <code>{esc(command)}</code></p>",
        "<p>Metrics against the human gold label with 95% percentile-bootstrap intervals "
        "over items; parse errors are left out of each judge's n and counted beside. "
        "Kappa is undefined where the judge (or the humans) give one label only.</p>",
        _html_table(judge_table(result), "Each judge against the human labels"),
        _html_table(judge_table(result, None), "Per category"),
        _html_table(agreement_table(result), "Agreement between judges"),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>capsafe judge audit: {esc(result.labelled.name)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    )
