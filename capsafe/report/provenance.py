"""The report's provenance and methods section: what produced every number, from the store.

Versions, the saved config, runs with their hyperparameters and seeds, checkpoints and
adapter folders, models, judges with versions and arguments, task scorers, and the
generation settings (backend, format, decoding) the responses were made with.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from capsafe.analysis.rows import ExperimentRows
from capsafe.report.markup import abbr, esc, json_cell, mono, number, raw, setting_text, table, text


def provenance_section(
    rows: ExperimentRows,
    config: Mapping[str, Any] | None,
    versions: Mapping[str, Sequence[str]] | None,
    capsafe_version: str,
) -> str:
    parts = [
        "<h3>capsafe versions</h3>",
        _versions(versions, capsafe_version),
        "<h3>Judges</h3>",
        _judges(rows),
        "<h3>Capability scoring</h3>",
        _tasks(rows),
        "<h3>Fine-tuning runs</h3>",
        _runs(rows),
        "<h3>Checkpoints</h3>",
        _checkpoints(rows),
        "<h3>Models</h3>",
        _models(rows),
        "<h3>Generation settings</h3>",
        _generation_settings(rows),
        "<h3>Experiment config</h3>",
        _config(config),
    ]
    return "".join(parts)


def _versions(versions: Mapping[str, Sequence[str]] | None, capsafe_version: str) -> str:
    head = f"<p>This report: capsafe {esc(capsafe_version)}.</p>"
    if versions is None:
        return head + "<p class='missing'>The rows' capsafe versions were not available.</p>"
    body = [[text(t), text(", ".join(v) or "(no rows)")] for t, v in sorted(versions.items())]
    mixed = {v for vs in versions.values() for v in vs}
    warn = (
        f"<p class='warn'>Rows were written by {len(mixed)} capsafe versions.</p>"
        if len(mixed) > 1
        else ""
    )
    return head + warn + table([text("store table"), text("capsafe versions of its rows")], body)


def _judges(rows: ExperimentRows) -> str:
    counts = Counter((j.judge, j.judge_version, j.judge_args) for j in rows.judgments)
    if not counts:
        return "<p class='missing'>No judgments.</p>"
    body = [
        [text(name), text(version), json_cell(args), number(str(n))]
        for (name, version, args), n in sorted(counts.items())
    ]
    per_name = Counter(name for name, _, _ in counts)
    merged = sorted(name for name, k in per_name.items() if k > 1)
    warn = (
        "<p class='warn'>Judges with several versions or argument sets: "
        f"{esc(', '.join(merged))}. The rates above group judgments by judge name only, "
        "so they mix these.</p>"
        if merged
        else ""
    )
    headers = [text("judge"), text("version"), text("arguments"), number("judgments")]
    return warn + table(headers, body)


def _tasks(rows: ExperimentRows) -> str:
    counts = Counter((s.task, s.task_version) for s in rows.scores)
    if not counts:
        return "<p class='missing'>No capability scores.</p>"
    body = [[text(t), text(v), number(str(n))] for (t, v), n in sorted(counts.items())]
    return table([text("task"), text("version"), number("scored responses")], body)


def _runs(rows: ExperimentRows) -> str:
    if not rows.runs:
        return "<p class='missing'>No fine-tuning runs.</p>"
    body = [
        [
            mono(r.run_id),
            text(r.base_name),
            text(r.task),
            text(setting_text(r)),
            number(str(r.seed)),
            number(str(r.epochs)),
            json_cell(r.settings, summary="settings"),
        ]
        for r in rows.runs
    ]
    headers = [text(h) for h in ("run", "base", "task", "hyperparameters")]
    headers += [number("seed"), number("epochs"), text("other settings")]
    return table(headers, body)


def _checkpoints(rows: ExperimentRows) -> str:
    if not rows.checkpoints:
        return "<p class='missing'>No checkpoints.</p>"
    body = [
        [
            mono(c.run_id),
            number(str(c.epoch)),
            number("–" if c.steps is None else str(c.steps)),
            number("–" if c.train_loss is None else f"{c.train_loss:.4f}"),
            raw(abbr(c.model_key)),
            mono(c.adapter_dir),
        ]
        for c in rows.checkpoints
    ]
    headers = [text("run"), number("epoch"), number("steps"), number("train loss")]
    headers += [text("model key"), text("adapter dir")]
    return table(headers, body)


def _models(rows: ExperimentRows) -> str:
    if not rows.models:
        return "<p class='missing'>No models.</p>"
    body = [
        [
            raw(abbr(m.model_key)),
            text(m.base_name),
            mono(m.base_path),
            raw(abbr(m.base_key)),
            mono(m.run_id or "–"),
            number("–" if m.epoch is None else str(m.epoch)),
            mono(m.adapter_dir or "–"),
        ]
        for m in rows.models
    ]
    headers = [text(h) for h in ("model key", "base", "base path", "base key", "run")]
    headers += [number("epoch"), text("adapter dir")]
    return table(headers, body)


def _generation_settings(rows: ExperimentRows) -> str:
    combos: Counter[tuple[str, str, str, str]] = Counter(
        (g.backend, g.format, g.format_spec, g.decoding) for g in rows.generations
    )
    prompts: dict[tuple[str, str], set[str]] = defaultdict(set)
    for g in rows.generations:
        prompts[(g.prompt_set, g.kind)].add(g.prompt_id)
    if not combos:
        return "<p class='missing'>No generations.</p>"
    settings = table(
        [
            text("backend"),
            text("format"),
            text("format spec"),
            text("decoding"),
            number("responses"),
        ],
        [
            [text(b), text(f), json_cell(spec), json_cell(dec), number(str(n))]
            for (b, f, spec, dec), n in sorted(combos.items())
        ],
    )
    sets = table(
        [text("prompt set"), text("kind"), number("distinct prompts")],
        [[text(s), text(k), number(str(len(ids)))] for (s, k), ids in sorted(prompts.items())],
    )
    return settings + sets


def _config(config: Mapping[str, Any] | None) -> str:
    if config is None:
        return (
            "<p class='warn'>The store holds no experiment config (meta key \"config\"); "
            "everything above comes from the result rows alone.</p>"
        )
    dumped = json.dumps(config, indent=2, ensure_ascii=False, default=str)
    return f"<pre class='config'>{esc(dumped)}</pre>"
