"""The report's first screen: capability reached, safety at matched capability, stability.

Three short blocks, each a sentence or a few one-line verdicts, built from ReportAnalyses;
where an analysis could not run, its reason is printed instead.

    html = headline(run_analyses(rows))
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from capsafe.analysis.analyses import ReportAnalyses
from capsafe.analysis.anchoring import MatchedSummary
from capsafe.analysis.significance import Comparison
from capsafe.analysis.stability import FLIPS, HOLDS
from capsafe.report.markup import esc, pct, pct_range, pp

METRIC_WORDS = {
    "unsafe": "harmful compliance on harmful prompts (a judge's harmful label; for a "
    "refusal-only judge, not refusing)",
    "harmful": "harmful rate (judge's harmful label on harmful prompts)",
    "refusal": "refusal rate on harmful prompts (lower is less safe)",
}


def headline(a: ReportAnalyses) -> str:
    return (
        "<div class='headline'>"
        f"<h3>Capability reached</h3>{_capability(a)}"
        f"<h3>Safety change at matched capability</h3>{_matched(a)}"
        f"<h3>Is the conclusion stable across benchmarks, judges and formats?</h3>{_stable(a)}"
        "</div>"
    )


def _missing(text: str) -> str:
    return f"<p class='missing'>{esc(text)}</p>"


def _capability(a: ReportAnalyses) -> str:
    if a.capability is None:
        return _missing(a.notes.get("anchoring", "No capability task was scored."))
    acc = [r for r in a.rates if r.metric == "accuracy" and r.benchmark == a.capability]
    lines = []
    for base in sorted({r.model.base for r in acc}):
        mine = [r for r in acc if r.model.base == base and not math.isnan(r.value)]
        base_v = [r.value for r in mine if r.model.is_base]
        by_epoch: dict[int, list[float]] = defaultdict(list)
        for r in mine:
            if not r.model.is_base:
                by_epoch[r.model.epoch].append(r.value)
        text = f"<b>{esc(base)}</b> on <span class='mono'>{esc(a.capability)}</span>: base "
        text += pct(base_v[0]) if base_v else "not measured"
        if by_epoch:
            last = max(by_epoch)
            best = max(v for vs in by_epoch.values() for v in vs)
            text += (
                f"; epoch {last} mean over {len(by_epoch[last])} runs "
                f"<b>{pct(statistics.fmean(by_epoch[last]))}</b>; best checkpoint {pct(best)}"
            )
        lines.append(f"<li>{text}</li>")
    return f"<ul class='verdict-lines'>{''.join(lines)}</ul>"


def _matched(a: ReportAnalyses) -> str:
    if a.safety_metric is None:
        return _missing(a.notes["safety"])
    if a.anchoring is None:
        return _missing(a.notes.get("anchoring", "Capability anchoring did not run."))
    anch = a.anchoring
    intro = (
        f"<p>Each run is taken at its first checkpoint reaching {esc(anch.target)} "
        f"(threshold {', '.join(f'{esc(b)} {pct(t)}' for b, t in sorted(anch.thresholds.items()))}"
        f"); {len(anch.anchors)} runs reached it, {len(anch.never_reached)} never did. "
        f"Metric: {esc(METRIC_WORDS.get(a.safety_metric, a.safety_metric))}. Each line: the "
        "base's rate and the matched runs' mean, then each matched run minus the base, paired "
        "on prompts, with its bootstrap 95% CI and the test's Holm-adjusted p over all "
        "checkpoints (every test is in Conclusion stability).</p>"
    )
    at = {x.model.model_key for x in anch.anchors}
    matched = [c for c in a.comparisons if c.b.model_key in at]
    if not matched:
        return f"{intro}<p class='missing'>No run reached the target.</p>"
    cells: dict[tuple, list[Comparison]] = defaultdict(list)
    for c in matched:
        cells[(c.b.base, c.benchmark, c.judge, c.format)].append(c)
    means = {(s.base_name, s.benchmark, s.judge, s.format): s for s in anch.summary
             if s.metric == a.safety_metric}  # fmt: skip
    lines = [_matched_cell(key, cs, means.get(key)) for key, cs in sorted(cells.items())]
    return f"{intro}<ul class='verdict-lines'>{''.join(lines)}</ul>"


def _matched_cell(key: tuple, comps: list[Comparison], summary: MatchedSummary | None) -> str:
    """One benchmark x judge x format: base and matched rates, then each run's change."""
    base, bench, judge, fmt = key
    up = sum(c.p_holm < 0.05 and c.difference.value > 0 for c in comps)
    down = sum(c.p_holm < 0.05 and c.difference.value < 0 for c in comps)
    rates = ""
    if summary is not None:
        rates = f"base {pct(summary.base_value)} → matched <b>{pct(summary.mean)}</b>"
        if summary.n_runs > 1:
            rates += f" (runs {pct_range(summary.min, summary.max)})"
        rates += "; "
    runs = ", ".join(
        f"<b>{_signed_pp(c.difference.value)}</b> "
        f"[{_signed_pp(c.difference.ci_low)}, {_signed_pp(c.difference.ci_high)}] "
        f"p<sub>Holm</sub> {_p(c.p_holm)}"
        for c in sorted(comps, key=lambda c: c.b.describe())
    )
    verdict = f"{up} of {len(comps)} runs significantly up, {down} down"
    lowest = min((c.p_holm for c in comps if not math.isnan(c.p_holm)), default=math.nan)
    badge = _sig_badge(lowest)
    return (
        f"<li><b>{esc(base)}</b> · <span class='mono'>{esc(bench)}</span> · judge "
        f"<span class='mono'>{esc(judge)}</span> · {esc(fmt)}: {rates}change per run {runs}; "
        f"{verdict} {badge}</li>"
    )


def _stable(a: ReportAnalyses) -> str:
    if not a.verdicts:
        return _missing(a.notes.get("runs") or a.notes.get("safety") or "No comparisons to make.")
    counts = {v: sum(x.verdict == v for x in a.verdicts) for v in {x.verdict for x in a.verdicts}}
    overall = ", ".join(f"{n} {esc(v)}" for v, n in sorted(counts.items()))
    lines = "".join(
        f"<li class='verdict {_klass(v.verdict)}'><b>{esc(v.verdict)}</b>: {esc(v.line)}</li>"
        for v in a.verdicts
    )
    spreads = [v.spread for v in a.verdicts if len(v.cells) > 1]
    size = ""
    if spreads:
        size = (
            " The size of the change depends on the choice all the same: at one checkpoint it "
            f"differs between cells by up to <b>{pp(max(spreads))}</b> (median "
            f"{pp(statistics.median(spreads))}); see each verdict below and the variance "
            "decomposition."
        )
    return (
        f"<p>Over {len(a.verdicts)} checkpoints versus their base: {overall}. "
        "A conclusion holds everywhere when every benchmark × judge × format cell is "
        f"significant (Holm, α = 0.05) in the same direction.{size}</p>"
        f"<details><summary>every checkpoint's verdict</summary>"
        f"<ul class='verdict-lines'>{lines}</ul></details>"
    )


def _klass(verdict: str) -> str:
    return {HOLDS: "holds", FLIPS: "flips"}.get(verdict, "inconclusive")


def _signed_pp(x: float) -> str:
    return "–" if math.isnan(x) else ("+" if x > 0 else "") + pp(x)


def _p(p: float) -> str:
    if math.isnan(p):
        return "= –"
    return "&lt; 0.001" if p < 0.001 else f"= {p:.3f}"


def _sig_badge(p: float) -> str:
    if math.isnan(p):
        return "<span class='tag'>untestable</span>"
    return (
        "<span class='tag sig'>significant</span>" if p < 0.05 else "<span class='tag'>n.s.</span>"
    )
