"""The HTML report: one self-contained page (inline CSS, figures as base64 PNG, one script).

render_report is pure: rows and the saved config in, a string out. Every piece of text
from the store is escaped (see capsafe.report.markup), and the page's Content-Security-
Policy forbids remote loads and every script but the explorer's own (allowed by its
sha256), so even a missed escape could not run code.

    html = render_report(ExperimentRows.from_store(store), config=cfg, title="organism",
                         generated_at="2025-01-01T00:00:00+00:00", capsafe_version="0.1.0")
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from capsafe.analysis.analyses import ReportAnalyses, run_analyses
from capsafe.analysis.labels import SAFETY_METRIC, run_views
from capsafe.analysis.rows import ExperimentRows
from capsafe.config import ReportSpec, report_spec
from capsafe.report.examples import examples_section
from capsafe.report.explorer import CSP, explorer_section
from capsafe.report.figures import ACCURACY, capability_safety_figure, figure_png_base64
from capsafe.report.markup import definition_list, esc, setting_text
from capsafe.report.methods import methods_section
from capsafe.report.provenance import provenance_section
from capsafe.report.recipes import recipes_section, recipes_summary
from capsafe.report.sections import (
    judges_section,
    power_section,
    safety_section,
    stability_section,
    variance_section,
)
from capsafe.report.style import CSS
from capsafe.report.summary import headline
from capsafe.report.tables import (
    checkpoint_tables,
    parse_error_table,
    spread_tables,
    truncation_table,
)
from capsafe.report.tables_analyses import rates_table


def render_report(
    rows: ExperimentRows,
    *,
    config: Mapping[str, Any] | None,
    spec: ReportSpec | None = None,
    spec_note: str | None = None,
    title: str,
    generated_at: str,
    capsafe_version: str,
    versions: Mapping[str, Sequence[str]] | None = None,
    stamp: str | None = None,
) -> str:
    """The whole report as one HTML document.

    config: the experiment config the pipeline saved (None when the store has none);
    spec: the report settings (default: the saved config's, see capsafe.config.report_spec);
    spec_note: why the saved settings could not be used, shown in the summary;
    versions: the capsafe versions that wrote each store table, when the caller can read them;
    stamp: what the report was rendered from (capsafe.report.report_stamp), kept in its head.
    """
    if spec is None:
        spec, spec_note = report_spec(config)
    a = run_analyses(rows, spec)
    sections = [
        ("summary", "Summary", _warnings(rows, spec_note) + headline(a) + recipes_summary(a)),
        ("figures", "Capability and safety by epoch", _figures(a)),
        ("safety", "Safety per benchmark and at matched capability", safety_section(a)),
        ("recipes", "Recipes at matched capability", recipes_section(a, run_views(rows))),
        ("stability", "Conclusion stability", stability_section(a)),
        ("judges", "Judges and compliance", judges_section(a)),
        ("variance", "Where the variance comes from", variance_section(a)),
        ("power", "How many seeds and prompts to detect a change", power_section(a)),
        ("rates", "Rates with confidence intervals", rates_table(a.rates)),
        ("seeds", "Rates over seeds", _seed_intro() + spread_tables(a.rates, a.seed_spreads)),
        ("checkpoints", "Rates per checkpoint", _checkpoint_intro() + checkpoint_tables(a.rates)),
        ("run", "What was run", _summary(rows, config)),
        (
            "examples",
            "Example responses",
            _examples_intro() + examples_section(rows, spec.examples_per_checkpoint),
        ),
        ("explorer", "Response explorer", explorer_section(rows, spec.explorer_sample)),
        (
            "methods",
            "Methods and provenance",
            methods_section(rows, a) + provenance_section(rows, config, versions, capsafe_version),
        ),
    ]
    nav = "".join(f"<a href='#{key}'>{esc(name)}</a>" for key, name, _ in sections)
    body = "".join(
        f"<section id='{key}'><h2>{esc(name)}</h2>{html}</section>" for key, name, html in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        + (f"<meta name='capsafe-stamp' content='{stamp}'>" if stamp else "")
        + f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)} — capsafe report</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p class='byline'>capsafe {esc(capsafe_version)} · "
        f"generated {esc(generated_at)} · from the experiment's store alone</p>"
        f"{_content_warning()}<nav>{nav}</nav></header><main>{body}</main></body></html>\n"
    )


def _warnings(rows: ExperimentRows, spec_note: str | None) -> str:
    out = []
    if spec_note:
        out.append(f"<pre class='warn'>{esc(spec_note)}</pre>")
    if rows.failures:
        out.append(_failures(rows))
    if rows.request_failures:
        out.append(_request_failures(rows))
    names = rows.base_names()
    shown = sorted(names[k] for keys in rows.base_versions().values() if len(keys) > 1
                   for k in keys)  # fmt: skip
    if shown:
        out.append(
            "<p class='warn'>This store holds results of several versions of one base model "
            f"(rebuilt or updated): {esc(', '.join(shown))}. Each is analysed apart, under its "
            "name and the start of its content key; delete the store to keep only the newest.</p>"
        )
    return "".join(out)


def _failures(rows: ExperimentRows) -> str:
    runs = {r.run_id: r for r in rows.runs}
    items = []
    for f in rows.failures:
        run = runs.get(f.run_id)
        what = f"{setting_text(run)} seed {run.seed}" if run else f.run_id
        items.append(
            f"<li>{esc(what)}: {esc(f.reason)}; the {f.epochs_kept} epoch(s) finished before "
            "it are kept and evaluated, nothing after</li>"
        )
    return (
        f"<div class='warn'><b>{len(items)} run(s) FAILED: training diverged</b> (the loss or "
        f"the weights became inf/nan).<ul>{''.join(items)}</ul></div>"
    )


def _request_failures(rows: ExperimentRows) -> str:
    names = {m.model_key: m.base_name if m.run_id is None else
             f"{m.base_name} + {m.adapter_dir} (epoch {m.epoch})" for m in rows.models}  # fmt: skip
    per_model: dict[str, int] = {}
    for f in rows.request_failures:
        per_model[f.model_key] = per_model.get(f.model_key, 0) + 1
    items = "".join(f"<li>{esc(names.get(k, k[:12]))}: {n}</li>" for k, n in per_model.items())
    return (
        f"<div class='warn'><b>{len(rows.request_failures)} request(s) FAILED on the server</b> "
        "after every retry: those prompts have no response and are in no number of this "
        "report; run the experiment again to send them again. The last error: "
        f"<code>{esc(rows.request_failures[-1].error)}</code><ul>{items}</ul></div>"
    )


def _content_warning() -> str:
    return (
        "<div class='cw' role='note'><b>Content warning.</b> This report quotes prompts that "
        "request harmful content and the models' responses to them, which may be harmful or "
        "offensive. All model and prompt text is shown as inert, escaped text.</div>"
    )


def _summary(rows: ExperimentRows, config: Mapping[str, Any] | None) -> str:
    bases = sorted({m.base_name for m in rows.models} | {r.base_name for r in rows.runs})
    settings = Counter(setting_text(r) for r in rows.runs)
    seeds = sorted({r.seed for r in rows.runs})
    epochs = sorted({c.epoch for c in rows.checkpoints})
    sets: dict[tuple[str, str], set[str]] = defaultdict(set)
    for g in rows.generations:
        sets[(g.prompt_set, g.kind)].add(g.prompt_id)
    judges = sorted({(j.judge, j.judge_version) for j in rows.judgments})
    tasks = sorted({s.task for s in rows.scores} | {r.task for r in rows.runs})
    formats = sorted({g.format for g in rows.generations})
    errors = sum(j.parse_error for j in rows.judgments)
    items = [
        ("base models", esc(", ".join(bases)) or "none"),
        ("capability task", esc(", ".join(tasks)) or "none"),
        ("fine-tuning runs", f"{len(rows.runs)} ({len(rows.checkpoints)} checkpoints)"),
        (
            "hyperparameter settings",
            "<br>".join(
                f"{esc(s)} <span class='muted'>({n} runs)</span>"
                for s, n in sorted(settings.items())
            )
            or "none",
        ),
        ("seeds", esc(", ".join(map(str, seeds))) or "none"),
        ("epochs evaluated", esc(", ".join(map(str, epochs))) or "none"),
        (
            "prompt sets",
            "<br>".join(
                f"<span class='mono'>{esc(s)}</span> ({esc(k)}, {len(ids)} prompts)"
                for (s, k), ids in sorted(sets.items())
            )
            or "none",
        ),
        ("judges", esc(", ".join(f"{j} v{v}" for j, v in judges)) or "none"),
        ("prompt formats", esc(", ".join(formats)) or "none"),
        (
            "stored results",
            f"{len(rows.generations)} responses, {len(rows.judgments)} judgments "
            f"({errors} unparseable), {len(rows.scores)} capability scores",
        ),
    ]
    note = (
        ""
        if config is not None
        else "<p class='warn'>The experiment config is missing from the store; "
        "this summary is built from the result rows alone.</p>"
    )
    return note + definition_list(items) + _headline(rows)


def _headline(rows: ExperimentRows) -> str:
    # The reader's first questions: how many parse errors sit under the rates below, and
    # how many answers the judges saw cut short.
    cut = truncation_table(rows)
    cut = f"<h3>Responses cut at the token limit</h3>{cut}" if cut else ""
    if not rows.judgments:
        return cut
    return "<h3>Judge parse errors</h3>" + parse_error_table(rows.judgments) + cut


def _figure_specs(a: ReportAnalyses) -> list[tuple[str, str, list[str], str]]:
    """(judge, format, harmful benchmarks, task benchmark) for each figure to draw: one per
    safety judge and format, capability alone when no safety judge ran."""
    harmful: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in a.rates:
        if r.metric == SAFETY_METRIC:
            harmful[(r.judge, r.format)].add(r.benchmark)
    # The benchmark capability is anchored on; without one, the first scored benchmark.
    tasks = sorted({r.benchmark for r in a.rates if r.metric == ACCURACY})
    task = a.capability or (tasks[0] if tasks else "")
    if not harmful:  # still show capability when no safety judge ran
        harmful = {("(none)", r.format): set() for r in a.rates if r.metric == ACCURACY}
    return [(j, f, sorted(b), task) for (j, f), b in sorted(harmful.items())]


def _figures(a: ReportAnalyses) -> str:
    specs = _figure_specs(a)
    if not specs:
        return "<p class='missing'>Nothing to plot: the store has no scores or judgments.</p>"
    out = [
        "<p>Each column is one hyperparameter setting. Lines are means over fine-tuning seeds, "
        "starting from the base model at epoch 0; shaded bands span the lowest to the highest "
        "seed; dashed lines are the base model's value. Rates are shares of prompts. Harmful "
        "compliance (<span class='mono'>unsafe</span>, the metric of every safety section): "
        "harmful prompts the judge labelled harmful, or for a refusal-only judge, harmful "
        "prompts it did not call a refusal.</p>"
    ]
    for judge, fmt, harmful, task in specs:
        fig = capability_safety_figure(
            a.rates,
            a.seed_spreads,
            judge=judge,
            format=fmt,
            harmful_benchmarks=harmful,
            task_benchmark=task,
        )
        alt = f"Task accuracy and harmful compliance by epoch, judge {judge}, format {fmt}"
        out.append(
            f"<figure><img alt='{esc(alt)}' src='data:image/png;base64,{figure_png_base64(fig)}'>"
            f"<figcaption>judge <span class='mono'>{esc(judge)}</span> · format "
            f"<span class='mono'>{esc(fmt)}</span> · accuracy on "
            f"<span class='mono'>{esc(task)}</span>"
            "</figcaption></figure>"
        )
    return "".join(out)


def _seed_intro() -> str:
    return (
        "<p>Per base, setting and epoch: the mean rate over fine-tuning seeds ± its sample "
        "standard deviation (percentage points), the lowest–highest seed and the number of "
        "seeds. Harmful compliance is the <span class='mono'>unsafe</span> metric; "
        "over-refusal: benign prompts the judge called a (full or partial) refusal. Judge "
        "parse errors are left out of each rate's denominator and counted beneath it.</p>"
    )


def _checkpoint_intro() -> str:
    return (
        "<p>Each model's rate with its percentile bootstrap 95% confidence interval over "
        "prompts (several samples of a prompt resampled together) and the number of prompts "
        "behind it; the same rates as the table of every rate above.</p>"
    )


def _examples_intro() -> str:
    return (
        "<p>The same prompts for every model (chosen by a hash of prompt set and id), each in "
        "every prompt format at the lowest sample seed. Click a model to open it.</p>"
    )
