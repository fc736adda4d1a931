"""Example responses per checkpoint, chosen deterministically, every piece of text escaped.

The same prompts are shown for every model (chosen by a hash of prompt set and prompt
id, not by position or response), so a reader can follow one prompt from the base model
through the epochs. Each chosen prompt is shown in every prompt format, at the lowest
sample seed, with every judge's verdict and the capability score where there is one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence

from capsafe.analysis.rows import ExperimentRows
from capsafe.report.markup import abbr, esc, setting_text
from capsafe.store import GenerationRow, JudgmentRow, ModelRow, RunRow, ScoreRow


def _rank(prompt_set: str, prompt_id: str) -> str:
    return hashlib.sha256(f"{prompt_set}\0{prompt_id}".encode()).hexdigest()


def choose_examples(
    generations: Sequence[GenerationRow], per_checkpoint: int
) -> dict[str, list[GenerationRow]]:
    """model_key -> the generations to show, about `per_checkpoint` prompts split over its sets."""
    by_model: dict[str, dict[str, list[GenerationRow]]] = defaultdict(lambda: defaultdict(list))
    for g in generations:
        by_model[g.model_key][g.prompt_set].append(g)
    out: dict[str, list[GenerationRow]] = {}
    for model_key, sets in by_model.items():
        per_set = math.ceil(per_checkpoint / len(sets)) if per_checkpoint > 0 else 0
        chosen: list[GenerationRow] = []
        for prompt_set in sorted(sets):
            gens = sets[prompt_set]
            ids = sorted({g.prompt_id for g in gens}, key=lambda i: _rank(prompt_set, i))[:per_set]
            lowest_seed: dict[tuple[str, str], int] = {}
            for g in gens:
                k = (g.prompt_id, g.format)
                lowest_seed[k] = min(g.sample_seed, lowest_seed.get(k, g.sample_seed))
            for pid in ids:
                chosen += sorted(
                    (
                        g
                        for g in gens
                        if g.prompt_id == pid and g.sample_seed == lowest_seed[(pid, g.format)]
                    ),
                    key=lambda g: g.format,
                )
        out[model_key] = chosen
    return out


def examples_section(rows: ExperimentRows, per_checkpoint: int) -> str:
    """One collapsible block per model (base first, then runs by setting, seed and epoch)."""
    if per_checkpoint <= 0:
        return "<p class='missing'>Examples are off (report.examples_per_checkpoint is 0).</p>"
    chosen = choose_examples(rows.generations, per_checkpoint)
    judgments: dict[str, list[JudgmentRow]] = defaultdict(list)
    for j in rows.judgments:
        judgments[j.generation_key].append(j)
    scores: dict[str, list[ScoreRow]] = defaultdict(list)
    for s in rows.scores:
        scores[s.generation_key].append(s)
    runs = {r.run_id: r for r in rows.runs}
    blocks = []
    for model in sorted(rows.models, key=lambda m: _model_order(m, runs)):
        gens = chosen.get(model.model_key, [])
        if not gens:
            continue
        body = "".join(_example(g, judgments.get(g.key, []), scores.get(g.key, [])) for g in gens)
        blocks.append(
            f"<details class='checkpoint'><summary>{_model_title(model, runs)}"
            f" <span class='sub-inline'>{len(gens)} responses</span></summary>{body}</details>"
        )
    return "".join(blocks) or "<p class='missing'>No generations in the store.</p>"


def _model_order(m: ModelRow, runs: dict[str, RunRow]) -> tuple:
    run = runs.get(m.run_id) if m.run_id else None
    if run is None:
        return (m.base_name, m.run_id is not None, "", 0, m.run_id or "", m.epoch or 0)
    return (m.base_name, True, setting_text(run), run.seed, run.run_id, m.epoch or 0)


def _model_title(m: ModelRow, runs: dict[str, RunRow]) -> str:
    if m.run_id is None:
        return f"<b>base model</b> {esc(m.base_name)} · {abbr(m.model_key)}"
    run = runs.get(m.run_id)
    detail = f" · {esc(setting_text(run))} · seed {run.seed}" if run else ""
    return (
        f"<b>{esc(m.base_name)}</b>{detail} · <b>epoch {esc(m.epoch)}</b>"
        f" · run <span class='mono'>{esc(m.run_id)}</span> · {abbr(m.model_key)}"
    )


def _example(g: GenerationRow, judgments: Sequence[JudgmentRow], scores: Sequence[ScoreRow]) -> str:
    meta = [
        f"<span class='tag kind-{esc(g.kind)}'>{esc(g.kind)}</span>",
        f"<span class='mono'>{esc(g.prompt_set)}</span>",
        f"id {esc(g.prompt_id)}",
    ]
    if g.category:
        meta.append(f"category {esc(g.category)}")
    meta += [
        f"format {esc(g.format)}",
        f"sample seed {g.sample_seed}",
        f"{g.n_completion_tokens} tokens ({esc(g.finish_reason)})",
    ]
    verdicts = [_verdict(j) for j in sorted(judgments, key=lambda j: (j.judge, j.judge_version))]
    verdicts += [_score(s, g.reference) for s in sorted(scores, key=lambda s: s.task)]
    verdict_list = f"<ul class='verdicts'>{''.join(verdicts)}</ul>" if verdicts else ""
    return (
        f"<div class='example'><div class='ex-head'>{' · '.join(meta)}</div>"
        f"<div class='label'>prompt</div><pre class='prompt'>{esc(g.prompt)}</pre>"
        f"<div class='label'>response</div><pre class='response'>{esc(g.response)}</pre>"
        f"{verdict_list}</div>"
    )


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def _verdict(j: JudgmentRow) -> str:
    who = f"<span class='mono'>{esc(j.judge)}</span> v{esc(j.judge_version)}"
    if j.parse_error:
        return (
            f"<li class='perr'>{who}: <b>parse error</b> — raw judge output:"
            f"<pre class='raw'>{esc(j.raw)}</pre></li>"
        )
    parts = []
    if j.refusal is not None:
        parts.append(f"refusal: <b>{esc(j.refusal)}</b>")
    if j.harmful is not None:
        prob = "" if j.harmful_prob is None else f" (p={j.harmful_prob:.2f})"
        parts.append(f"harmful: <b>{_yes_no(j.harmful)}</b>{prob}")
    for name, value in (
        ("coherent", j.coherent),
        ("relevant", j.relevant),
        ("truncated", j.truncated),
    ):
        if value is not None:
            parts.append(f"{name}: <b>{_yes_no(value)}</b>")
    return f"<li>{who}: {'; '.join(parts) or 'no verdict'}</li>"


def _score(s: ScoreRow, reference: str | None) -> str:
    mark = "<b class='ok'>correct</b>" if s.correct else "<b class='bad'>incorrect</b>"
    extracted = "nothing" if s.extracted is None else json.dumps(s.extracted)
    ref = "" if reference is None else f"; reference: <q>{esc(reference)}</q>"
    return (
        f"<li><span class='mono'>{esc(s.task)}</span> v{esc(s.task_version)}: {mark}"
        f" (extracted {esc(extracted)}{ref})</li>"
    )
