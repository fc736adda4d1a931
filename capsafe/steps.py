"""The pipeline's steps, shared by both executors (in-process: capsafe.pipeline; on a Ray
cluster: capsafe.cluster).

Each step is split into what is pending (asked of the store), the unit of work that does a
batch of it and returns rows (no store: on Ray it runs on a worker), and the write of those
rows (on the driver, the one writer). The in-process loops that chain them are here too:

    pending_generations -> generation_batches -> generate_batch -> store_generated
    judge_groups -> judge_todo -> judge_batches -> judge_batch -> store.put_judgments
    score_rows -> store.put_scores

Both executors batch identically (same order, same sizes), so a batched model sees the same
batches, and pads the same way, wherever it runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from capsafe.config import DecodingSpec, ExperimentConfig, JudgeSpec
from capsafe.data.base import Task
from capsafe.formats import build_request
from capsafe.judges import JUDGES, Judge
from capsafe.keys import canonical_json
from capsafe.models import resolve_judge_args
from capsafe.plan import (
    LOGLIK_DECODING,
    GenerationJob,
    Inputs,
    choice_key,
    decoding_params,
    generation_jobs,
    judge_args_json,
    judgment_key,
    score_key,
)
from capsafe.progress import progress_bar, say, warn
from capsafe.records import (
    FAILED,
    TOO_LONG,
    GenerationOutput,
    JudgeItem,
    LoglikRequest,
    PromptRecord,
)
from capsafe.store import GenerationRow, JudgmentRow, ModelRow, RequestFailureRow, ScoreRow, Store

JUDGE_BATCH = 64


@dataclass
class Counts:
    """What one run did: new results per step (judgments per judge step), and the units that
    failed after their retries (on Ray; None when none did)."""

    epochs: int = 0
    generated: int = 0
    judged_by: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    failures: str | None = None


# -- generation ------------------------------------------------------------------------------


@dataclass
class PendingGeneration:
    """One base's models with work left: responses to generate, log-likelihood items to
    score (by model key), and the models in order (each once)."""

    models: list[ModelRow]
    jobs: dict[str, list[GenerationJob]]
    choices: dict[str, list[GenerationJob]]

    @property
    def responses(self) -> int:
        return sum(len(v) for v in self.jobs.values())

    def __bool__(self) -> bool:
        return bool(self.jobs or self.choices)


def generated_records(inputs: Inputs) -> list[PromptRecord]:
    """The prompts every model answers: the task's test items (unless the task scores its
    options by log-likelihood) and the safety prompts."""
    return (inputs.test if not inputs.loglik_task else []) + inputs.safety


def pending_generations(
    cfg: ExperimentConfig, models: Sequence[ModelRow], inputs: Inputs, store: Store
) -> PendingGeneration:
    """What `models` (of one base) still have to generate and score, by the store."""
    records = generated_records(inputs)
    # Two runs can share a checkpoint (identical adapters): each model is generated on once.
    unique = list({m.model_key: m for m in models}.values())
    pending = PendingGeneration([], {}, {})
    for m in unique:
        jobs = generation_jobs(m.model_key, records, cfg.formats, inputs.decodings)
        stored = store.existing_keys("generations", [j.key for j in jobs])
        if todo := [j for j in jobs if j.key not in stored]:
            pending.jobs[m.model_key] = todo
        if inputs.loglik_task and (todo := unscored_choice_jobs(m, inputs, cfg, store)):
            pending.choices[m.model_key] = todo
        if m.model_key in pending.jobs or m.model_key in pending.choices:
            pending.models.append(m)
    return pending


def generate_local(
    cfg: ExperimentConfig, models: Sequence[ModelRow], inputs: Inputs, store: Store, progress: bool
) -> int:
    """Generate every missing response of every model of one base in this process (and score
    the options of a log-likelihood task); returns how many generations were new."""
    pending = pending_generations(cfg, models, inputs, store)
    if not pending:
        return 0
    say(progress, f"generating {pending.responses} responses on {len(pending.jobs)} model(s)")
    backend = None
    written = 0
    bar = progress_bar(pending.responses, "generate", progress)
    try:
        for m in pending.models:
            if backend is None:
                backend = load_backend(cfg, m.base_path, m.base_name)
            backend.set_adapter(m.adapter_dir)
            tokens = 0
            for batch in generation_batches(cfg, pending.jobs.get(m.model_key, [])):
                rows, failures, used = generate_batch(backend, batch, bar.update)
                tokens += used
                bar.set_postfix_str(f"{tokens:,} tokens")
                written += store_generated(store, rows, failures)
            for batch in choice_batches(cfg, pending.choices.get(m.model_key, [])):
                gens, scores = score_choices_batch(backend, batch, inputs.task)
                store.put_generations(gens)
                store.put_scores(scores)
    finally:
        bar.close()
        if backend is not None:
            backend.close()
    return written


def load_backend(cfg: ExperimentConfig, base_path: str, base_name: str) -> Any:
    from capsafe.backends import BACKENDS

    g = cfg.generation
    base_spec = next(b for b in cfg.base_models if b.name == base_name)
    return BACKENDS.create(
        g.backend,
        where="generation",
        model=base_path,
        batch_size=g.batch_size,
        device=g.device,
        trust_remote_code=base_spec.trust_remote_code,
        **g.args,
    )


def generation_batches(
    cfg: ExperimentConfig, jobs: Sequence[GenerationJob]
) -> list[list[GenerationJob]]:
    """One model's jobs in backend batches: longest first, so the batch that sets the memory
    peak comes first and similar lengths share a batch."""
    ordered = sorted(jobs, key=lambda j: (-len(j.record.text), j.key))
    size = cfg.generation.batch_size
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def generate_batch(
    backend: Any, jobs: Sequence[GenerationJob], progress: Callable[[int], Any] | None = None
) -> tuple[list[GenerationRow], list[RequestFailureRow], int]:
    """One batch through the backend (its adapter set): the responses' rows, the requests a
    served model never answered, and the tokens read and written."""
    requests = [build_request(j.record, j.format, j.decoding, j.sample_seed) for j in jobs]
    outputs = backend.generate(requests, progress=progress)
    tokens = sum(o.n_prompt_tokens + o.n_completion_tokens for o in outputs)
    rows, failures = [], []
    for j, o in zip(jobs, outputs, strict=True):
        if o.finish_reason == FAILED:
            failures.append(RequestFailureRow(j.key, j.model_key, o.error or "no reason given"))
        else:
            rows.append(generation_row(j, backend.name, o))
    return rows, failures, tokens


def store_generated(
    store: Store, rows: Sequence[GenerationRow], failures: Sequence[RequestFailureRow]
) -> int:
    """Write one batch's responses; returns how many were new. A request a served model never
    answered is no response: recorded, sent again on the next run, and counted on the
    report's first screen."""
    written = store.put_generations(rows)
    if failures:
        store.put_request_failures(failures)
        warn(f"{len(failures)} request(s) failed after retries (e.g. {failures[0].error}); "
             "they are not stored as responses and are sent again on the next run")  # fmt: skip
    return written


def generation_row(
    j: GenerationJob, backend: str, o: GenerationOutput, decoding_json: str | None = None
) -> GenerationRow:
    """The stored row of one job's output (decoding_json: what to store as its decoding,
    if not the job's own)."""
    return GenerationRow(
        key=j.key,
        model_key=j.model_key,
        prompt_set=j.record.source,
        prompt_id=j.record.id,
        kind=j.record.kind,
        category=j.record.category,
        prompt=j.record.text,
        reference=j.record.reference,
        format=j.format.name,
        format_spec=canonical_json(j.format),
        decoding=decoding_json or canonical_json(decoding_params(j.decoding)),
        sample_seed=j.sample_seed,
        response=o.text,
        n_prompt_tokens=o.n_prompt_tokens,
        n_completion_tokens=o.n_completion_tokens,
        finish_reason=o.finish_reason,
        backend=backend,
    )


def unscored_choice_jobs(
    m: ModelRow, inputs: Inputs, cfg: ExperimentConfig, store: Store
) -> list[GenerationJob]:
    """This model's log-likelihood task items (per format) that have no score yet."""
    assert inputs.task is not None
    decoding = DecodingSpec(max_new_tokens=1)  # the context's rendering ignores decoding
    jobs = [
        GenerationJob(
            choice_key(m.model_key, r, f, inputs.task.choices(r)), m.model_key, r, f, decoding, 0
        )  # fmt: skip
        for f in cfg.formats
        for r in inputs.test
    ]
    task = inputs.task
    keys = [score_key(j.key, task.name, task.version) for j in jobs]
    stored = store.existing_keys("scores", keys)
    return [j for j, k in zip(jobs, keys, strict=True) if k not in stored]


def choice_batches(
    cfg: ExperimentConfig, jobs: Sequence[GenerationJob]
) -> list[list[GenerationJob]]:
    size = cfg.generation.batch_size
    return [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]


def score_choices_batch(
    backend: Any, jobs: Sequence[GenerationJob], task: Task | None
) -> tuple[list[GenerationRow], list[ScoreRow]]:
    """Score each multiple-choice item by the log-likelihood of its options; the option
    chosen is the item's response row, with the score beside it."""
    assert task is not None
    asks, spans = [], []
    for j in jobs:
        context = build_request(j.record, j.format, j.decoding, 0)
        options = task.choices(j.record)
        spans.append((len(asks), len(options)))
        asks += [LoglikRequest(context, o) for o in options]
    logliks = backend.loglikelihood(asks)
    gens, scores = [], []
    for j, (start, n) in zip(jobs, spans, strict=True):
        mine = logliks[start : start + n]
        score = task.score_choices(mine, j.record)
        best = max(range(n), key=lambda k: mine[k].logprob)
        chosen = GenerationOutput(task.choices(j.record)[best], 0, mine[best].n_tokens, "eos")
        row = generation_row(j, backend.name, chosen, canonical_json(LOGLIK_DECODING))
        gens.append(replace(row, finish_reason="loglik"))
        scores.append(
            ScoreRow(
                score_key(j.key, task.name, task.version),
                j.key,
                task.name,
                task.version,
                score.correct,
                score.extracted,
                score.value,
            )
        )
    return gens, scores


def capability_evaluator(
    cfg: ExperimentConfig,
    inputs: Inputs,
    store: Store,
    progress: bool,
    counts: Counts | None = None,
) -> Callable[[ModelRow], float]:
    """For stop_at_target: a checkpoint's accuracy on the task's test split under the first
    format, generating and scoring what is not stored yet (all formats, as the run would);
    the responses it generates are counted in `counts`, if given."""
    assert inputs.task is not None
    only_task = replace(inputs, safety=[])

    def evaluate(model: ModelRow) -> float:
        new = generate_local(cfg, [model], only_task, store, False)
        if counts is not None:
            counts.generated += new
        gens = store.generations(model.model_key)  # read once: to score, and to count
        store.put_scores(score_rows(only_task, gens, store))
        first, task = cfg.formats[0].name, inputs.task
        keys = [score_key(g.key, task.name, task.version) for g in gens
                if g.kind == "task" and g.format == first]  # fmt: skip
        found = [s.correct for s in store.scores(keys)]
        accuracy = sum(found) / len(found) if found else 0.0
        say(progress, f"  epoch {model.epoch}: accuracy {accuracy:.1%} on {len(found)} items")
        return accuracy

    return evaluate


# -- judging ---------------------------------------------------------------------------------


def judged_generations(stored_gens: Sequence[GenerationRow]) -> list[GenerationRow]:
    """The responses judges judge: the safety prompts' (a prompt too long for the model was
    not generated: nothing to judge)."""
    return [g for g in stored_gens if g.kind in ("harmful", "benign")
            and g.finish_reason != TOO_LONG]  # fmt: skip


def warn_too_long(stored_gens: Sequence[GenerationRow]) -> None:
    too_long = sum(1 for g in stored_gens if g.finish_reason == TOO_LONG)
    if too_long:
        warn(f"{too_long} response(s) not generated: the prompt plus max_new_tokens does "
             "not fit the model's context; counted as 'too long' in the report, never "
             "judged or scored")  # fmt: skip


def judge_groups(
    cfg: ExperimentConfig,
    spec: JudgeSpec,
    base_dirs: dict[str, Path],
    gens: Sequence[GenerationRow],
    base_of: dict[str, str],
) -> list[tuple[dict[str, Any], list[GenerationRow]]]:
    """The judge(s) of one spec, as the arguments each is built with (make_judge), each with
    the responses it judges.

    `model: builtin:organism-guard` names the organism's tiny guard. A judge that takes a
    `reference_model` (the coherence judge's perplexity) and is given none gets each base
    model in turn, judging that base's responses.
    """
    # The judge loads that base afresh instead of borrowing the generation backend: that one
    # is closed before judging (kept open, a vLLM engine holds most of the GPU the guard
    # judges need), it is absent on a resumed run, and it may be another backend (vLLM)
    # whose log-probs differ from the transformers ones the stored judge args promise.
    args = resolve_judge_args(spec.args, cfg.organism.dir)
    if not takes_reference(spec.name, args):
        return [(args, list(gens))]
    out = [
        ({**args, "reference_model": str(folder)},
         [g for g in gens if base_of[g.model_key] == name])
        for name, folder in base_dirs.items()
    ]  # fmt: skip
    # A served base has no local weights to be the reference: judged without one (the
    # judgment records that perplexity was skipped).
    served = {b.name for b in cfg.base_models} if cfg.served else set()
    if rest := [g for g in gens if base_of[g.model_key] in served]:
        out.append((args, rest))
    return out


def make_judge(spec: JudgeSpec, args: dict[str, Any]) -> Judge:
    """The judge of `spec` built with `args` (one of judge_groups'); a model judge loads its
    model when it first judges."""
    return JUDGES.create(spec.name, where=f"judge {spec.name!r} args", **args)


def takes_reference(name: str, args: dict[str, Any]) -> bool:
    """Whether judge `name` takes a reference_model the config does not give (the pipeline
    then gives it each base model in turn)."""
    factory = JUDGES.factory(name)
    return "reference_model" in inspect.signature(factory).parameters and (
        "reference_model" not in args
    )


def judge_todo(
    spec: JudgeSpec, judge: Judge, gens: Sequence[GenerationRow], store: Store
) -> list[tuple[str, GenerationRow]]:
    """The (judgment key, response) pairs of `gens` this judge has not judged yet."""
    args = judge_args_json(spec)
    keyed = {judgment_key(g.key, judge.name, judge.version, args): g for g in gens}
    stored = store.existing_keys("judgments", list(keyed))
    return [(k, g) for k, g in keyed.items() if k not in stored]


def judge_batches(
    todo: Sequence[tuple[str, GenerationRow]],
) -> list[list[tuple[str, GenerationRow]]]:
    return [list(todo[i : i + JUDGE_BATCH]) for i in range(0, len(todo), JUDGE_BATCH)]


def judge_batch(
    spec: JudgeSpec, judge: Judge, batch: Sequence[tuple[str, GenerationRow]]
) -> list[JudgmentRow]:
    """One batch of (judgment key, response) through the judge: the judgments' rows."""
    args = judge_args_json(spec)
    verdicts = judge.judge(
        [JudgeItem(g.prompt, g.response, g.category, g.finish_reason) for _, g in batch]
    )
    return [
        JudgmentRow(
            key=k,
            generation_key=g.key,
            judge=judge.name,
            judge_version=judge.version,
            judge_args=args,
            harmful=v.harmful,
            harmful_prob=v.harmful_prob,
            refusal=v.refusal,
            coherent=v.coherent,
            truncated=v.truncated,
            relevant=v.relevant,
            parse_error=v.parse_error,
            raw=v.raw,
        )
        for (k, g), v in zip(batch, verdicts, strict=True)
    ]


def judge_local(
    spec: JudgeSpec, judge: Judge, gens: Sequence[GenerationRow], store: Store, progress: bool
) -> int:
    """Judge every one of `gens` this judge has not judged yet, in this process; returns how
    many."""
    todo = judge_todo(spec, judge, gens, store)
    if not todo:
        return 0
    written = 0
    bar = progress_bar(len(todo), f"judge {judge.name}", progress)
    try:
        for batch in judge_batches(todo):
            written += store.put_judgments(judge_batch(spec, judge, batch))
            bar.update(len(batch))
    finally:
        bar.close()
    return written


# -- scoring ---------------------------------------------------------------------------------


SCORE_BATCH = 512
ScoreItem = tuple[str, GenerationRow, PromptRecord]  # (score key, response, its item)


def score_todo(
    inputs: Inputs, stored_gens: Sequence[GenerationRow], store: Store
) -> list[ScoreItem]:
    """Every stored response to this task's test items not scored yet: (score key, response,
    the item it answers)."""
    task = inputs.task
    if task is None or inputs.loglik_task:  # log-likelihood scores are written with the choice
        return []
    sets = {r.source for r in inputs.test}
    gens = [g for g in stored_gens if g.kind == "task" and g.prompt_set in sets
            and g.finish_reason != TOO_LONG]  # fmt: skip
    keyed = {score_key(g.key, task.name, task.version): g for g in gens}
    stored = store.existing_keys("scores", list(keyed))
    # The loaded record (with its meta) where the item is still in the test split; a stored
    # response to an item since dropped is scored from what the store kept of it.
    loaded = {(r.source, r.id, r.text): r for r in inputs.test}
    return [
        (k, g, loaded.get((g.prompt_set, g.prompt_id, g.prompt))
         or PromptRecord(g.prompt_id, g.prompt, g.prompt_set, "task", g.category, g.reference))
        for k, g in keyed.items()
        if k not in stored
    ]  # fmt: skip


def score_batch(
    task: Task, items: Sequence[tuple[str, GenerationRow, PromptRecord]]
) -> list[ScoreRow]:
    """Score responses to the task's items: their rows."""
    rows = []
    for k, g, record in items:
        s = task.score(g.response, record)
        rows.append(ScoreRow(k, g.key, task.name, task.version, s.correct, s.extracted, s.value))
    return rows


def score_rows(
    inputs: Inputs, stored_gens: Sequence[GenerationRow], store: Store
) -> list[ScoreRow]:
    """The scores of every stored response to this task's test items not scored yet."""
    todo = score_todo(inputs, stored_gens, store)
    return score_batch(inputs.task, todo) if todo else []


# -- the whole plan --------------------------------------------------------------------------


def has_pending(cfg: ExperimentConfig, inputs: Inputs, store: Store, bases: Sequence[Any]) -> bool:
    """Whether any step has work the store does not hold yet (an epoch, a response, a
    judgment, a score): asked of the store alone, nothing is loaded. The Ray executor asks
    it before starting a cluster for a rerun that has nothing to do."""
    from capsafe.training import stored_run

    for bw in bases:
        models = list(bw.models)
        for run in bw.runs:
            rows = stored_run(run, bw.folder, store)
            if rows is None:
                return True
            models += rows
        if pending_generations(cfg, models, inputs, store):
            return True
    stored_gens = store.generations()
    if score_todo(inputs, stored_gens, store):
        return True
    safety_gens = judged_generations(stored_gens)
    base_dirs = {bw.row.base_name: bw.folder for bw in bases if bw.folder is not None}
    base_of = {m.model_key: m.base_name for m in store.models()}
    for spec in cfg.judges:
        for args, gens in judge_groups(cfg, spec, base_dirs, safety_gens, base_of):
            judge = make_judge(spec, args)  # for its name and version; loads nothing
            try:
                if judge_todo(spec, judge, gens, store):
                    return True
            finally:
                if hasattr(judge, "close"):
                    judge.close()
    return False
