"""The response explorer: a bounded sample of the responses (capsafe.report.sample), filterable
by checkpoint, benchmark, category, judge, judge disagreement and coherence, in the page with
no server. `capsafe view DIR` serves the same explorer over every stored response.

The responses travel as JSON in a <script type="application/json"> block, with "<", ">"
and "&" written as \\u escapes so no model output can close the block. Every string that
repeats across responses (checkpoint names, prompts, benchmarks, judges' verdicts) is
written once, in index tables the records point into (explorer_data). The page's one
script (explorer_js.SCRIPT, allowed by its hash in the Content-Security-Policy) builds the list
with textContent only, never innerHTML. A filter can be set from the URL:
report.html#f:benchmark=organism/harmful&disagree=1 (keys: checkpoint, benchmark,
category, judge, disagree, incoherent).

    data_json = explorer_json(rows)            # the data block's text
    html = explorer_section(rows, sample=2000) # the controls, the data block and the list
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence

from capsafe.analysis.labels import judge_fields, judge_label
from capsafe.analysis.rows import ExperimentRows
from capsafe.records import LENGTH
from capsafe.report.explorer_js import SCRIPT
from capsafe.report.flags import Flags, judgments_by_generation, response_flags
from capsafe.report.markup import esc, setting_text
from capsafe.report.sample import explorer_sample
from capsafe.store import GenerationRow, JudgmentRow

SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
# The report's Content-Security-Policy: no remote loads, no script but the explorer's own.
CSP = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'"


def _verdict(j: JudgmentRow) -> str:
    if j.parse_error:
        return "parse error"
    parts = []
    if j.harmful is not None:
        parts.append(f"harmful: {'yes' if j.harmful else 'no'}")
    if j.refusal is not None:
        parts.append(f"refusal: {j.refusal}")
    if j.coherent is not None:
        parts.append(f"coherent: {'yes' if j.coherent else 'no'}")
    if j.truncated:
        parts.append("truncated (token limit)")
    return "; ".join(parts) or "no verdict"


def checkpoint_names(rows: ExperimentRows) -> dict[str, str]:
    """Per model key, the name the explorer shows and filters by (only rows.models and
    rows.runs are read)."""
    runs = {r.run_id: r for r in rows.runs}
    bases = rows.base_names()
    names = {}
    for m in rows.models:
        run = runs.get(m.run_id) if m.run_id else None
        base = bases[m.base_key]
        names[m.model_key] = (
            f"{base} (base)"
            if run is None
            else f"{base} · {setting_text(run)} · seed {run.seed} · epoch {m.epoch}"
        )
    return names


def explorer_record(
    g: GenerationRow, judgments: Sequence[JudgmentRow], checkpoint: str, flags: Flags
) -> dict[str, object]:
    """One response as the explorer's script reads it (the report's and capsafe view's);
    `judgments` in the order to show them."""
    return {
        "ck": checkpoint, "b": g.prompt_set, "c": g.category or "", "k": g.kind, "f": g.format,
        "s": g.sample_seed, "p": g.prompt, "r": g.response,
        "j": [[judge_label(j.judge, j.judge_args), _verdict(j)] for j in judgments],
        "d": flags.disagree, "i": flags.incoherent, "x": g.finish_reason == LENGTH,
    }  # fmt: skip


def explorer_records(
    rows: ExperimentRows, generations: Iterable[GenerationRow] | None = None
) -> list[dict[str, object]]:
    """The records of `generations` (default: all of the rows'), ordered by checkpoint."""
    names = checkpoint_names(rows)
    by_gen = judgments_by_generation(rows)
    fields = judge_fields(rows)
    out = []
    gens = rows.generations if generations is None else generations
    for g in sorted(gens, key=lambda g: (names.get(g.model_key, ""), g.key)):
        js = by_gen.get(g.key, [])
        flags = response_flags(g.kind, js, fields)
        out.append(explorer_record(g, js, names.get(g.model_key, g.model_key), flags))
    return out


# The record fields that repeat across responses, each kept once in a table of its own.
INDEXED = ("ck", "b", "c", "k", "f", "p")


def explorer_data(
    rows: ExperimentRows, generations: Iterable[GenerationRow] | None = None
) -> dict[str, object]:
    """The records with every repeated string replaced by its index in a table: {"t": {field:
    [strings]}, "r": [records]}, a record's "j" holding [judge index, verdict index] pairs
    into the tables "jl" and "jv". expand_explorer_data reverses it."""
    tables: dict[str, dict[str, int]] = {key: {} for key in (*INDEXED, "jl", "jv")}

    def index(table: str, value: str) -> int:
        return tables[table].setdefault(value, len(tables[table]))

    records = []
    for r in explorer_records(rows, generations):
        out = {**r, **{key: index(key, r[key]) for key in INDEXED}}  # type: ignore[arg-type]
        out["j"] = [[index("jl", label), index("jv", text)] for label, text in r["j"]]  # type: ignore[attr-defined]
        records.append(out)
    return {"t": {key: list(values) for key, values in tables.items()}, "r": records}


def expand_explorer_data(data: dict[str, object]) -> list[dict[str, object]]:
    """The records explorer_data indexed, whole again (the page's script does the same)."""
    t: dict[str, list[str]] = data["t"]  # type: ignore[assignment]
    return [
        {**r, **{key: t[key][r[key]] for key in INDEXED},
         "j": [[t["jl"][a], t["jv"][b]] for a, b in r["j"]]}
        for r in data["r"]  # type: ignore[attr-defined]
    ]  # fmt: skip


def explorer_json(rows: ExperimentRows, generations: Iterable[GenerationRow] | None = None) -> str:
    """explorer_data as JSON safe inside a <script> element (no "<", ">" or "&" left)."""
    data = explorer_data(rows, generations)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def filter_form() -> str:
    """The explorer's filter controls (their options are filled by the script): the report's
    and capsafe view's."""
    selects = "".join(
        f"<label>{esc(label)} <select id='flt-{key}'><option value=''>all</option></select>"
        "</label>"
        for key, label in (("ck", "checkpoint"), ("b", "benchmark"), ("c", "category"),
                           ("j", "judge"))
    )  # fmt: skip
    return (
        f"<form id='explorer-filters' class='filters'>{selects}"
        "<label><input type='checkbox' id='flt-d'> judges disagree</label>"
        "<label>coherence <select id='flt-i'><option value=''>all</option>"
        "<option value='1'>incoherent</option><option value='0'>coherent</option></select>"
        "</label></form>"
    )


CONTENT_WARNING = (
    "<div class='cw' role='note'><b>Content warning.</b> Unfiltered prompts and model "
    "responses below; they may be harmful or offensive. They are shown as plain text.</div>"
)


def explorer_section(rows: ExperimentRows, sample: int) -> str:
    """The explorer over at most `sample` responses (report.explorer_sample)."""
    if not rows.generations:
        return "<p class='missing'>No responses in the store.</p>"
    chosen = explorer_sample(rows, sample)
    return (
        CONTENT_WARNING
        + _sample_note(len(chosen.generations), chosen.stored)
        + filter_form()
        + "<p id='explorer-count' class='muted'>The explorer needs JavaScript; the example "
        "responses above are static.</p><div id='explorer-list'></div>"
        "<button type='button' id='explorer-more' hidden>show more</button>"
        "<script type='application/json' id='explorer-data'>"
        f"{explorer_json(rows, chosen.generations)}</script>"
        f"<script>{SCRIPT}</script>"
    )


def _sample_note(shown: int, stored: int) -> str:
    view = (
        "<span class='mono'>capsafe view DIR</span> serves this explorer over every stored "
        "response (DIR: the experiment folder, which holds capsafe.db)."
    )
    if shown == stored:
        return f"<p id='explorer-sample'>All {stored:,} stored responses are here. {view}</p>"
    return (
        f"<p id='explorer-sample' class='warn'>This report holds <b>{shown:,} of the {stored:,} "
        "stored responses</b>: an even share of each checkpoint on each benchmark, judge "
        "disagreements and incoherent responses first, the rest chosen by a hash of the "
        "prompt; at most <span class='mono'>report.explorer_sample</span> in all. "
        f"{view}</p>"
    )
