"""The response explorer: every response, filterable by checkpoint, benchmark, category, judge,
judge disagreement and coherence, in the page with no server.

The responses travel as JSON in a <script type="application/json"> block, with "<", ">"
and "&" written as \\u escapes so no model output can close the block. Every string that
repeats across responses (checkpoint names, prompts, benchmarks, judges' verdicts) is
written once, in index tables the records point into (explorer_data). The page's one
script (explorer_js.SCRIPT, allowed by its hash in the Content-Security-Policy) builds the list
with textContent only, never innerHTML. A filter can be set from the URL:
report.html#f:benchmark=organism/harmful&disagree=1 (keys: checkpoint, benchmark,
category, judge, disagree, incoherent).

    data_json = explorer_json(rows)            # the data block's text
    html = explorer_section(rows)              # the controls, the data block and the list
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict

from capsafe.analysis.labels import judge_fields, judge_label, unsafe_value
from capsafe.analysis.rows import ExperimentRows
from capsafe.report.explorer_js import SCRIPT
from capsafe.report.markup import esc, setting_text
from capsafe.store import JudgmentRow

SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()


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


def _call(j: JudgmentRow, kind: str, fields: dict[str, set[str]]) -> float | None:
    """What judges must agree on: harmful compliance on harmful prompts (see
    analysis.labels), whether the model refused on benign ones."""
    if kind == "harmful":
        return unsafe_value(j, fields[judge_label(j.judge, j.judge_args)])
    return None if j.refusal is None else float(j.refusal != "none")


def explorer_records(rows: ExperimentRows) -> list[dict[str, object]]:
    runs = {r.run_id: r for r in rows.runs}
    bases = rows.base_names()
    fields = judge_fields(rows)
    names = {}
    for m in rows.models:
        run = runs.get(m.run_id) if m.run_id else None
        base = bases[m.base_key]
        names[m.model_key] = (
            f"{base} (base)"
            if run is None
            else f"{base} · {setting_text(run)} · seed {run.seed} · epoch {m.epoch}"
        )
    by_gen: dict[str, list[JudgmentRow]] = defaultdict(list)
    for j in rows.judgments:
        by_gen[j.generation_key].append(j)
    out = []
    for g in sorted(rows.generations, key=lambda g: (names.get(g.model_key, ""), g.key)):
        js = sorted(by_gen.get(g.key, []), key=lambda j: (j.judge, j.judge_args))
        calls = {_call(j, g.kind, fields) for j in js if not j.parse_error} - {None}
        coherent = [j.coherent for j in js if j.coherent is not None and not j.parse_error]
        out.append({
            "ck": names.get(g.model_key, g.model_key), "b": g.prompt_set, "c": g.category or "",
            "k": g.kind, "f": g.format, "s": g.sample_seed, "p": g.prompt, "r": g.response,
            "j": [[judge_label(j.judge, j.judge_args), _verdict(j)] for j in js],
            "d": len(calls) > 1, "i": (not all(coherent)) if coherent else None,
        })  # fmt: skip
    return out


# The record fields that repeat across responses, each kept once in a table of its own.
INDEXED = ("ck", "b", "c", "k", "f", "p")


def explorer_data(rows: ExperimentRows) -> dict[str, object]:
    """The records with every repeated string replaced by its index in a table: {"t": {field:
    [strings]}, "r": [records]}, a record's "j" holding [judge index, verdict index] pairs
    into the tables "jl" and "jv". expand_explorer_data reverses it."""
    tables: dict[str, dict[str, int]] = {key: {} for key in (*INDEXED, "jl", "jv")}

    def index(table: str, value: str) -> int:
        return tables[table].setdefault(value, len(tables[table]))

    records = []
    for r in explorer_records(rows):
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


def explorer_json(rows: ExperimentRows) -> str:
    """explorer_data as JSON safe inside a <script> element (no "<", ">" or "&" left)."""
    text = json.dumps(explorer_data(rows), ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def explorer_section(rows: ExperimentRows) -> str:
    if not rows.generations:
        return "<p class='missing'>No responses in the store.</p>"
    selects = "".join(
        f"<label>{esc(label)} <select id='flt-{key}'><option value=''>all</option></select>"
        "</label>"
        for key, label in (("ck", "checkpoint"), ("b", "benchmark"), ("c", "category"),
                           ("j", "judge"))
    )  # fmt: skip
    return (
        "<div class='cw' role='note'><b>Content warning.</b> Unfiltered prompts and model "
        "responses below; they may be harmful or offensive. They are shown as plain text.</div>"
        f"<form id='explorer-filters' class='filters'>{selects}"
        "<label><input type='checkbox' id='flt-d'> judges disagree</label>"
        "<label>coherence <select id='flt-i'><option value=''>all</option>"
        "<option value='1'>incoherent</option><option value='0'>coherent</option></select>"
        "</label></form>"
        "<p id='explorer-count' class='muted'>The explorer needs JavaScript; the example "
        "responses above are static.</p><div id='explorer-list'></div>"
        "<button type='button' id='explorer-more' hidden>show more</button>"
        f"<script type='application/json' id='explorer-data'>{explorer_json(rows)}</script>"
        f"<script>{SCRIPT}</script>"
    )
