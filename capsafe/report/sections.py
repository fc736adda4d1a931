"""The report's analysis sections: each figure with its caption and table, or the reason it
is missing. Pure: analyses in, markup out.

    html = figures_section(metrics, spreads, analyses) + judges_section(analyses)
"""

from __future__ import annotations

from matplotlib.figure import Figure

from capsafe.analysis.analyses import ReportAnalyses
from capsafe.report.figures import figure_png_base64
from capsafe.report.figures_judges import coherence_figure, stability_figure, variance_figure
from capsafe.report.figures_safety import benchmark_figure, compliance_figure, frontier_figure
from capsafe.report.markup import esc
from capsafe.report.tables_analyses import (
    anchoring_table,
    comparisons_table,
    fits_table,
    reliability_table,
    variance_table,
)
from capsafe.report.tables_spread import power_table, setting_tests_table, spread_table


def img(fig: Figure, alt: str, caption: str) -> str:
    """A figure as an inline PNG with a plain-text alt and a markup caption."""
    return (
        f"<figure><img alt='{esc(alt)}' src='data:image/png;base64,{figure_png_base64(fig)}'>"
        f"<figcaption>{caption}</figcaption></figure>"
    )


def missing(text: str) -> str:
    return f"<p class='missing'>{esc(text)}</p>"


def safety_section(a: ReportAnalyses) -> str:
    """Safety per benchmark, and the safety-capability frontier."""
    if a.safety_metric is None:
        return missing(a.notes["safety"])
    out = [
        "<h3>Safety per benchmark</h3>",
        img(
            benchmark_figure(a.rates, a.safety_metric),
            f"{a.safety_metric} rate per benchmark, base and each epoch",
            f"{esc(a.safety_metric)} rate per benchmark: the base with its bootstrap 95% CI, "
            "each epoch's mean over runs with whiskers from the lowest to the highest run.",
        ),
        "<h3>Safety-capability frontier</h3>",
    ]
    if a.capability is None:
        out.append(missing("No capability task was scored: no frontier to draw."))
    else:
        out.append(img(
            frontier_figure(a.rates, a.capability, a.safety_metric),
            "safety against capability for every checkpoint",
            f"Each checkpoint a point (accuracy on {esc(a.capability)}, {esc(a.safety_metric)} "
            "rate averaged over benchmarks); each run's points joined in epoch order from the "
            "base (star); eN marks a run's last epoch.",
        ))  # fmt: skip
    out += ["<h3>Capability anchoring</h3>", anchoring_table(a.anchoring, a.notes.get("anchoring"))]
    return "".join(out)


def stability_section(a: ReportAnalyses) -> str:
    if not a.verdicts:
        return missing(a.notes.get("runs") or a.notes.get("safety") or "No comparisons.")
    return (
        img(
            stability_figure(a.verdicts),
            "conclusion stability matrix",
            "Rows: checkpoints against their base; columns: benchmark × judge × format. Red: "
            "significantly up, blue: significantly down (Holm, α = 0.05), grey: not "
            "significant; numbers: the difference in percentage points.",
        )
        + "<h3>Every test against the base</h3>"
        + f"<details><summary>{len(a.comparisons)} paired tests, with effect sizes and their "
        "CIs</summary>" + comparisons_table(a.comparisons) + "</details>"
    )


def judges_section(a: ReportAnalyses) -> str:
    """Judge labels on coherent vs incoherent responses, agreement, and harm vs compliance."""
    out = ["<h3>Judge labels on incoherent vs coherent responses</h3>"]
    if a.coherence_judge is None or a.reliability is None:
        out.append(missing(a.notes.get("reliability", "Judge reliability did not run.")))
    else:
        out.append(img(
            coherence_figure(a.reliability),
            "judge label shares on coherent and incoherent responses",
            f"Coherence from judge <span class='mono'>{esc(a.coherence_judge)}</span>. Judges "
            "are known to label incoherent text unreliably: compare each judge's two bars.",
        ))  # fmt: skip
    if a.reliability is not None:
        out.append(reliability_table(a.reliability))
    out.append("<h3>Harmfulness versus compliance</h3>")
    if not a.fits:
        out.append(missing(a.notes.get("compliance", "No fits.")))
    else:
        out.append(img(
            compliance_figure(a.fits),
            "harmful rate against compliance with least-squares lines",
            "Every checkpoint (and the base) a point; the line is the least-squares fit, R² in "
            "the legend. Slope near 1 with high R²: harm tracks compliance.",
        ))  # fmt: skip
        out.append(fits_table(a.fits))
    return "".join(out)


def variance_section(a: ReportAnalyses) -> str:
    """The variance decomposition, the spread over each factor, and settings over seeds."""
    note = a.notes.get("variance")
    out = [f"<p class='warn'>{esc(note)}</p>" if note else ""]
    if a.decomposition is not None:
        dec = a.decomposition
        out += [
            img(
                variance_figure(dec),
                f"variance decomposition by {dec.method}",
                f"Share of the variance of the {esc(dec.metric)} rate (fine-tuned runs at the "
                f"last epoch) per factor; method: {esc(dec.method)}.",
            ),
            variance_table(dec),
        ]
    out += ["<h3>Spread over each factor</h3>", spread_table(a.spreads)]
    out.append("<h3>Settings compared over their fine-tuning seeds</h3>")
    if a.setting_tests:
        out += [
            "<p>Runs with different seeds are independent, so settings are compared on their "
            "per-seed rates (an exact permutation test; Welch's t beside it), not on pooled "
            "prompts. With n seeds per setting the smallest permutation p is 1 / C(2n, n) "
            "(two-sided: 2 / C(2n, n)), so two seeds each can never reach p &lt; 0.05.</p>",
            setting_tests_table(a.setting_tests),
        ]
    else:
        out.append(missing(a.notes.get("settings", "No settings to compare.")))
    return "".join(out)


def power_section(a: ReportAnalyses) -> str:
    if not a.power:
        return missing(a.notes.get("power") or a.notes.get("runs") or "No power analysis.")
    return (
        f"<p>To detect a change of {a.power_change * 100:g} percentage points in "
        f"{esc(a.safety_metric or '')} with 80% power at α = 0.05: <b>prompts</b> per model "
        "on the same prompts (paired, McNemar; the prompts whose label moved against the "
        "change, e.g. from harmful to safe, are taken as the noise it must rise above) or on "
        "independent prompts (unpaired, Cohen's h), "
        "and <b>fine-tuning seeds</b> per setting (two-sample t-test on the observed "
        "between-seed standard deviation). These are normal approximations: near a rate of "
        "0% or 100% they are optimistic, and the exact tests the report runs need more. "
        "Plan for another change with "
        "<span class='mono'>capsafe report DIR report.power_change=0.05</span>.</p>"
        + power_table(a.power)
    )
