"""Runs an experiment's plan in-process: fine-tune, generate, judge, score, report.

Each step first asks the store which of its keys are done and does only the rest, so a
rerun does no stored work, an interrupted run resumes, and adding a judge generates
nothing. Results are written batch by batch; a crash loses at most the batch in flight.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from capsafe.config import (
    BUILTIN_ORGANISM,
    AdapterSpec,
    ConfigError,
    DecodingOverride,
    DecodingSpec,
    ExperimentConfig,
    JudgeSpec,
    resolve_decoding,
)
from capsafe.cost import StepCost, estimate
from capsafe.data import TASKS, DataContext, load_prompt_set, sizes
from capsafe.data.base import PROMPT_SETS, EmptySetError, take
from capsafe.data.decoding import default_decoding
from capsafe.data.files import HubUnavailable, hub_offline
from capsafe.errors import UserError
from capsafe.finetune.checkpoints import non_finite_tensors
from capsafe.finetune.tracking import check_trackers
from capsafe.formats import build_request
from capsafe.judges import JUDGES, Judge
from capsafe.judges.base import judge_model
from capsafe.keys import canonical_json, digest, folder_content_hash
from capsafe.locking import folder_lock
from capsafe.models import (
    BUILTIN_GUARD,
    guard_pending,
    local_model_folder,
    resolve_folder,
    resolve_judge_args,
    resolve_model,
)
from capsafe.plan import (
    LOGLIK_DECODING,
    GenerationJob,
    Inputs,
    PlanSummary,
    adapter_model_key,
    base_model_key,
    choice_key,
    decoding_params,
    generation_jobs,
    judge_args_json,
    judgment_key,
    plan_runs,
    score_key,
    served_key,
    summarise,
)
from capsafe.progress import progress_bar, say, warn
from capsafe.records import (
    FAILED,
    TOO_LONG,
    GenerationOutput,
    JudgeItem,
    LoglikRequest,
    PromptKind,
    PromptRecord,
    TrainExample,
)
from capsafe.store import (
    CheckpointRow,
    GenerationRow,
    JudgmentRow,
    ModelRow,
    RequestFailureRow,
    RunRow,
    ScoreRow,
    Store,
)
from capsafe.training import finetune_run, load_recipes

STORE_FILE = "capsafe.db"
REPORT_FILE = "report.html"
JUDGE_BATCH = 64


@dataclass(frozen=True)
class RunOutcome:
    summary: PlanSummary
    epochs_trained: int
    generated: int
    judged: int
    scored: int
    report: Path | None
    seconds: float
    # Wall seconds per step (finetune, generate, judge, score) and the plan's cost estimate,
    # so the throughput model can be checked against the run.
    step_seconds: dict[str, float] = field(default_factory=dict)
    estimate: list[StepCost] = field(default_factory=list)  # empty when the run did nothing
    judged_by: dict[str, int] = field(default_factory=dict)  # new judgments per judge

    def work(self) -> tuple[dict[str, int], dict[str, int]]:
        """Units of work per step (as step_seconds names them): planned, and done by this
        run (epochs, responses, judgments, scores)."""
        s = self.summary
        planned = {"finetune": s.checkpoints - s.adapters, "generate": s.generations}
        done = {"finetune": self.epochs_trained, "generate": self.generated, **self.judged_by}
        planned |= {j: s.judgments // max(1, len(self.judged_by)) for j in self.judged_by}
        planned["score"] = sum(c.count for c in self.estimate if c.step == "score")
        done["score"] = self.scored
        return planned, done


def needs_organism(cfg: ExperimentConfig) -> bool:
    names = [*([cfg.task.name] if cfg.task else []), *(s.name for s in cfg.safety)]
    # A mix drawn from the organism's world (safety_mix and poison default to it) reads it too.
    ft = cfg.finetune
    recipes = ft.recipes if ft else []
    rounds = [rd for r in recipes for rd in (ft.recipe_rounds(r) or [])] if ft else []
    mixes = [(r.name, r.args) for r in recipes] + [(rd.recipe, rd.args) for rd in rounds]
    organism_mix = any(
        name in ("safety_mix", "poison") and args.get("source", "organism") == "organism"
        for name, args in mixes
    )
    return cfg.uses_organism() or organism_mix or any(n.startswith("organism") for n in names)


def load_inputs(
    cfg: ExperimentConfig, progress: bool = True, missing: list[str] | None = None
) -> Inputs:
    """The experiment's data. With `missing` (a dry run), a hub dataset that is not on this
    machine is planned around: its prompts are stood in for by placeholders, as many as its
    limit or its documented size (capsafe.data.sizes), and a line saying so is added to
    `missing`; without it, such data is an error."""
    if needs_organism(cfg):
        from capsafe.organism import ensure_organism

        ensure_organism(cfg.organism.dir, seed=cfg.organism.seed, progress=progress)
    ctx = DataContext(organism_dir=cfg.organism.dir)
    task, task_id, train, test = None, "none", [], []
    decodings: dict[str, DecodingSpec] = {}
    if cfg.task is not None:
        spec = cfg.task
        task = TASKS.create(spec.name, where="task.args", ctx=ctx, path=spec.path, **spec.args)
        task_id = f"{task.name}@{task.version}"
        train_size, test_size = sizes.TASKS.get(spec.name, (None, None))
        test = _or_planned(lambda: take(task.test_prompts(), spec.test_limit), missing,
                           f"task {spec.name!r}, test split", spec.test_limit, test_size,
                           _stand_in(spec.name, "task"))  # fmt: skip
        if not test:
            raise EmptySetError(f"task {spec.name!r}: the test split is empty")
        if cfg.finetune is not None:  # only training reads the train split
            train = _or_planned(lambda: task.train_examples()[: spec.train_limit], missing,
                                f"task {spec.name!r}, train split", spec.train_limit,
                                train_size, lambda _: TrainExample(PLACEHOLDER,
                                                                   PLACEHOLDER))  # fmt: skip
            if not train:
                raise EmptySetError(f"task {spec.name!r}: the train split is empty")
        _decode_as(decodings, test, "task.decoding", cfg, default_decoding(spec.name, task),
                   spec.decoding)  # fmt: skip
    safety = []
    for i, s in enumerate(cfg.safety):
        source = str(s.args.get("set_name", s.name))
        records = _or_planned(
            lambda s=s, i=i: load_prompt_set(s.name, ctx, path=s.path, limit=s.limit,
                                             seed=s.seed, stratify=s.stratify,
                                             where=f"safety.{i}.args", **s.args),
            missing, f"safety.{i} ({s.name})", s.limit, sizes.PROMPT_SETS.get(s.name),
            _stand_in(source, "harmful"),
        )  # fmt: skip
        _decode_as(decodings, records, f"safety.{i}.decoding", cfg, default_decoding(s.name),
                   s.decoding)  # fmt: skip
        safety += records
    recipes = []
    if cfg.finetune is not None and task is not None:
        # Never train on a prompt the experiment evaluates on; the organism's full evaluation
        # sets count too, so a limit raised later cannot reach a mixed-in prompt.
        exclude = [r.text for r in test + safety] + _organism_eval_prompts(cfg, ctx)
        recipes = load_recipes(cfg, ctx, task, train, exclude)
    return Inputs(ctx, task, task_id, train, test, safety, recipes, decodings)


# What a prompt or training example is stood in for by where its data is not here: about 64
# tokens of text (a nominal length; the dry run says which counts rest on it).
PLACEHOLDER = "lorem ipsum " * 21


def _or_planned(
    load: Callable[[], list[Any]],
    missing: list[str] | None,
    what: str,
    limit: int | None,
    size: int | None,
    placeholder: Callable[[int], Any],
) -> list[Any]:
    """load(), or where its hub data is not here and `missing` is given, placeholders: as
    many as `limit` (at most `size`), else `size`; a line in `missing` says which."""
    try:
        return load()
    except UserError as err:
        if missing is None or not _hub_unavailable(err):
            raise
        reason = str(err)
    n = min(limit, size) if limit and size else (limit or size or 0)
    how = ("its limit" if limit and (not size or limit <= size) else "its documented size"
           if size else "size unknown: give it a limit to plan it")  # fmt: skip
    missing.append(f"{what}: not on this machine, planned with {n} placeholder items "
                   f"({how}); {reason}")  # fmt: skip
    return [placeholder(i) for i in range(n)]


def _stand_in(source: str, kind: PromptKind) -> Callable[[int], PromptRecord]:
    """The i-th placeholder prompt of a set or task whose data is not here."""
    return lambda i: PromptRecord(f"{source}#{i}", PLACEHOLDER, source, kind, reference="0")


def _hub_unavailable(err: BaseException | None) -> bool:
    while err is not None:
        if isinstance(err, HubUnavailable):
            return True
        err = err.__cause__
    return False


def _decode_as(
    decodings: dict[str, DecodingSpec],
    records: Sequence[PromptRecord],
    where: str,
    cfg: ExperimentConfig,
    default: Mapping[str, Any],
    own: DecodingOverride | None,
) -> None:
    """Record the decoding of `records` (a set's or the task's) under each of their sources."""
    try:
        decoding = resolve_decoding(cfg.decoding, default, own)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    for source in {r.source for r in records}:
        if decodings.setdefault(source, decoding) != decoding:
            raise ConfigError(f"{where}: prompts of {source!r} come from two entries with "
                              "different decodings")  # fmt: skip


def _organism_eval_prompts(cfg: ExperimentConfig, ctx: DataContext) -> list[str]:
    if not needs_organism(cfg):
        return []
    from capsafe.organism import load_world

    world = load_world(ctx.organism_dir)
    return [it.prompt for name in ("harmful_test", "lookalike_test", "capability_test")
            for it in world[name]]  # fmt: skip


def run_experiment(
    cfg: ExperimentConfig, *, progress: bool = True, report: bool = True
) -> RunOutcome:
    assert cfg.output_dir is not None
    # The folders this run makes (the output folder and any missing parents), so that a run
    # that fails before storing anything leaves none of them behind.
    made = [p for p in (cfg.output_dir, *cfg.output_dir.parents) if not p.exists()]
    try:
        with folder_lock(cfg.output_dir, "running an experiment"):
            return _run_experiment(cfg, progress=progress, report=report)
    except BaseException:
        if made and _remove_if_unused(cfg.output_dir):
            for parent in made[1:]:
                if any(parent.iterdir()):
                    break
                parent.rmdir()
        raise


def _remove_if_unused(folder: Path) -> bool:
    """Remove `folder` when it holds only the lock and a store without result rows; says
    whether it did."""
    from capsafe.locking import LOCK_FILE

    store_files = {STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm"}
    names = {p.name for p in folder.iterdir()}
    if not names <= {LOCK_FILE, *store_files}:
        return False
    if STORE_FILE in names:
        with Store(folder / STORE_FILE) as store:
            if store.revision() != 0:
                return False
    for name in names:
        (folder / name).unlink(missing_ok=True)
    folder.rmdir()
    return True


def _run_experiment(cfg: ExperimentConfig, *, progress: bool, report: bool) -> RunOutcome:
    start = time.monotonic()
    assert cfg.output_dir is not None
    check_config(cfg)  # a misspelt name or argument fails now, not after fine-tuning
    inputs = load_inputs(cfg, progress)
    summary = summarise(cfg, *inputs.responses_per_model(cfg.formats), len(cfg.adapters))
    base_dirs: dict[str, Path] = {}
    counts = {"epochs": 0, "generated": 0}
    clock = StepClock()
    with Store(cfg.output_dir / STORE_FILE) as store:
        store.set_meta("config", cfg.model_dump_json())
        for base in cfg.base_models:
            if cfg.served:  # no weights here: the served name and the user's revision
                base_path = base.path
                base_key = served_key(base)
            else:
                base_dir = resolve_model(base, cfg.organism.dir)
                base_dirs[base.name] = base_dir
                base_path = str(base_dir)
                base_key = base_model_key(folder_content_hash(base_dir, store))
            base_row = ModelRow(base_key, base.name, base_path, base_key)
            store.put_model(base_row)
            models = [base_row] + _adapter_models(cfg, base.name, base_row, inputs, store)
            evaluate = _capability_evaluator(cfg, inputs, store, progress) if inputs.task else None
            for run in plan_runs(cfg, base.name, base_key, inputs.recipes):
                with clock("finetune"):
                    rows, trained = finetune_run(cfg, run, base_dir, store, evaluate, progress)
                for row in rows:
                    store.put_model(row)
                models += rows
                counts["epochs"] += trained
            with clock("generate"):
                counts["generated"] += _generate(cfg, models, inputs, store, progress)
        stored_gens = store.generations()  # read once: judging and scoring both filter it
        too_long = sum(1 for g in stored_gens if g.finish_reason == TOO_LONG)
        if too_long:
            warn(f"{too_long} response(s) not generated: the prompt plus max_new_tokens does "
                 "not fit the model's context; counted as 'too long' in the report, never "
                 "judged or scored")  # fmt: skip
        # A prompt too long for the model was not generated: nothing to judge or score.
        safety_gens = [g for g in stored_gens if g.kind in ("harmful", "benign")
                       and g.finish_reason != TOO_LONG]  # fmt: skip
        base_of = {m.model_key: m.base_name for m in store.models()}
        judged_by: dict[str, int] = {}
        for spec in cfg.judges:
            step = f"judge {spec.name}"
            judged_by[step] = 0
            with clock(step):
                for judge, gens in judge_instances(cfg, spec, base_dirs, safety_gens, base_of):
                    try:
                        judged_by[step] += _judge(spec, judge, gens, store, progress)
                    finally:
                        if hasattr(judge, "close"):
                            judge.close()
        judged = sum(judged_by.values())
        with clock("score"):
            scored = _score(inputs, stored_gens, store)
        report_path = None
        if report:
            from capsafe.report import write_report

            # A rerun that wrote nothing keeps the report it rendered last time.
            report_path = write_report(store, cfg.output_dir / REPORT_FILE, keep_current=True)
    return RunOutcome(
        summary,
        counts["epochs"],
        counts["generated"],
        judged,
        scored,
        report_path,
        time.monotonic() - start,
        clock.seconds,
        # The estimate beside the time taken, for a run that did some work: a rerun that did
        # none would pay for it (loading a tokenizer: 5 s of a warm quick start) for nothing.
        estimate(cfg, inputs)
        if counts["epochs"] or counts["generated"] or judged or scored
        else [],
        judged_by,
    )


class StepClock:
    """Wall seconds spent in each named step, summed over its entries."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.monotonic() - start


def _adapter_models(
    cfg: ExperimentConfig, base_name: str, base: ModelRow, inputs: Inputs, store: Store
) -> list[ModelRow]:
    """The config's ready-made adapters on this base, stored as runs: the adapters sharing a
    `run` label are one run's checkpoints (by epoch), any other is a run of one checkpoint."""
    mine = [a for a in cfg.adapters if cfg.adapter_base(a) == base_name]
    keys = {a.name: _adapter_key(cfg, a, base, store) for a in mine}
    groups: dict[str, list[AdapterSpec]] = {}
    for a in mine:
        groups.setdefault(a.run or f"adapter:{a.name}", []).append(a)
    rows = []
    for label, members in groups.items():
        members.sort(key=lambda a: a.epoch or 1)
        ran = members[0].run is not None
        # A run's id: its checkpoints' keys, so another set of checkpoints is another run.
        run_id = (
            digest(adapter=keys[members[0].name])
            if not ran
            else digest(adapter_run=label, checkpoints=[keys[a.name] for a in members])
        )
        hparams = {"adapter": members[0].name} if not ran else {"adapter_run": label}
        settings: dict[str, Any] = {"adapter_path": members[0].path,
                                    "revision": members[0].revision}  # fmt: skip
        if ran:
            settings = {"checkpoints": [{"name": a.name, "epoch": a.epoch, "adapter_path": a.path,
                                         "revision": a.revision} for a in members]}  # fmt: skip
        store.put_run(
            RunRow(run_id, base_name, base.base_key, inputs.task_id, canonical_json(hparams), 0,
                   members[-1].epoch or 1, canonical_json(settings))
        )  # fmt: skip
        for a in members:
            epoch, path = a.epoch or 1, _adapter_path(cfg, a)
            store.put_checkpoint(CheckpointRow(run_id, epoch, keys[a.name], path, None, None))
            row = ModelRow(keys[a.name], base_name, base.base_path, base.base_key, run_id,
                           epoch, path)  # fmt: skip
            store.put_model(row)
            rows.append(row)
    return rows


def _adapter_path(cfg: ExperimentConfig, a: AdapterSpec) -> str:
    """What the backend attaches: the served model's name, or the adapter's local folder."""
    if cfg.served:
        return a.path
    return str(resolve_folder(a.path, a.revision, what=f"adapter {a.name!r}",
                              required="adapter_config.json"))  # fmt: skip


def _adapter_key(cfg: ExperimentConfig, a: AdapterSpec, base: ModelRow, store: Store) -> str:
    """An adapter's model key: a served one by its name and revision, a local one by its
    files' content (refused when they hold inf/nan)."""
    if cfg.served:
        return served_key(a, base.base_key)
    folder = Path(_adapter_path(cfg, a))
    bad = non_finite_tensors(folder)
    if bad:  # its answers would be garbage, scored as if they meant something
        raise UserError(
            f"adapters: {a.name!r} ({folder}) holds inf/nan in {len(bad)} tensor(s), e.g. "
            f"{bad[0]}; a diverged adapter is not evaluated"
        )
    return adapter_model_key(base.base_key, folder_content_hash(folder, store))


def _capability_evaluator(
    cfg: ExperimentConfig, inputs: Inputs, store: Store, progress: bool
) -> Callable[[ModelRow], float]:
    """For stop_at_target: a checkpoint's accuracy on the task's test split under the first
    format, generating and scoring what is not stored yet (all formats, as the run would)."""
    assert inputs.task is not None
    only_task = replace(inputs, safety=[])

    def evaluate(model: ModelRow) -> float:
        _generate(cfg, [model], only_task, store, False)
        gens = store.generations(model.model_key)  # read once: to score, and to count
        _score(only_task, gens, store)
        first, task = cfg.formats[0].name, inputs.task
        keys = [score_key(g.key, task.name, task.version) for g in gens
                if g.kind == "task" and g.format == first]  # fmt: skip
        found = [s.correct for s in store.scores(keys)]
        accuracy = sum(found) / len(found) if found else 0.0
        say(progress, f"  epoch {model.epoch}: accuracy {accuracy:.1%} on {len(found)} items")
        return accuracy

    return evaluate


def _generated_records(inputs: Inputs) -> list[PromptRecord]:
    """The prompts every model answers: the task's test items (unless the task scores its
    options by log-likelihood) and the safety prompts."""
    return (inputs.test if not inputs.loglik_task else []) + inputs.safety


def _generate(
    cfg: ExperimentConfig, models: Sequence[ModelRow], inputs: Inputs, store: Store, progress: bool
) -> int:
    """Generate every missing response of every model of one base (and score the options of
    a log-likelihood task); returns how many generations were new."""
    records = _generated_records(inputs)
    # Two runs can share a checkpoint (identical adapters): each model is generated on once.
    models = list({m.model_key: m for m in models}.values())
    pending: dict[str, list[GenerationJob]] = {}
    choice_jobs: dict[str, list[GenerationJob]] = {}
    for m in models:
        jobs = generation_jobs(m.model_key, records, cfg.formats, inputs.decodings)
        stored = store.existing_keys("generations", [j.key for j in jobs])
        if todo := [j for j in jobs if j.key not in stored]:
            pending[m.model_key] = todo
        if inputs.loglik_task and (todo := _unscored_choice_jobs(m, inputs, cfg, store)):
            choice_jobs[m.model_key] = todo
    if not pending and not choice_jobs:
        return 0
    total = sum(len(v) for v in pending.values())
    say(progress, f"generating {total} responses on {len(pending)} model(s)")
    backend = None
    written = 0
    bar = progress_bar(total, "generate", progress)
    try:
        base_spec = next(b for b in cfg.base_models if b.name == models[0].base_name)
        for m in models:
            if m.model_key not in pending and m.model_key not in choice_jobs:
                continue
            if backend is None:
                backend = _load_backend(cfg, m.base_path, base_spec.trust_remote_code)
            backend.set_adapter(m.adapter_dir)
            written += _generate_jobs(cfg, backend, pending.get(m.model_key, []), store, bar)
            _score_choices(cfg, backend, choice_jobs.get(m.model_key, []), inputs, store)
    finally:
        bar.close()
        if backend is not None:
            backend.close()
    return written


def _load_backend(cfg: ExperimentConfig, base_path: str, trust_remote_code: bool) -> Any:
    from capsafe.backends import BACKENDS

    g = cfg.generation
    return BACKENDS.create(
        g.backend,
        where="generation",
        model=base_path,
        batch_size=g.batch_size,
        device=g.device,
        trust_remote_code=trust_remote_code,
        **g.args,
    )


def _generate_jobs(
    cfg: ExperimentConfig, backend: Any, jobs: list[GenerationJob], store: Store, bar: Any
) -> int:
    # Longest first, so the batch that sets the memory peak comes first and similar
    # lengths share a batch; each batch is stored before the next starts.
    jobs = sorted(jobs, key=lambda j: (-len(j.record.text), j.key))
    size = cfg.generation.batch_size
    written = tokens = 0
    for i in range(0, len(jobs), size):
        batch = jobs[i : i + size]
        requests = [build_request(j.record, j.format, j.decoding, j.sample_seed) for j in batch]
        outputs = backend.generate(requests, progress=bar.update)
        tokens += sum(o.n_prompt_tokens + o.n_completion_tokens for o in outputs)
        bar.set_postfix_str(f"{tokens:,} tokens")
        done, failed = [], []
        for j, o in zip(batch, outputs, strict=True):
            (failed if o.finish_reason == FAILED else done).append((j, o))
        written += store.put_generations([generation_row(j, backend.name, o) for j, o in done])
        # A request a served model never answered is no response: recorded, sent again on
        # the next run, and counted on the report's first screen.
        if failed:
            store.put_request_failures(
                [
                    RequestFailureRow(j.key, j.model_key, o.error or "no reason given")
                    for j, o in failed
                ]
            )
            warn(f"{len(failed)} request(s) failed after retries (e.g. {failed[0][1].error}); "
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


def _unscored_choice_jobs(
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


def _score_choices(
    cfg: ExperimentConfig, backend: Any, jobs: list[GenerationJob], inputs: Inputs, store: Store
) -> None:
    """Score each multiple-choice item by the log-likelihood of its options; the option
    chosen is stored as the item's response, with the score beside it."""
    task = inputs.task
    if not jobs or task is None:
        return
    for i in range(0, len(jobs), cfg.generation.batch_size):
        batch = jobs[i : i + cfg.generation.batch_size]
        asks, spans = [], []
        for j in batch:
            context = build_request(j.record, j.format, j.decoding, 0)
            options = task.choices(j.record)
            spans.append((len(asks), len(options)))
            asks += [LoglikRequest(context, o) for o in options]
        logliks = backend.loglikelihood(asks)
        gens, scores = [], []
        for j, (start, n) in zip(batch, spans, strict=True):
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
        store.put_generations(gens)
        store.put_scores(scores)


def check_config(cfg: ExperimentConfig) -> None:
    """Every name in the config is registered and its factory takes the arguments given,
    checked before any work starts (an unknown backend or a bad judge argument used to
    surface only after fine-tuning); nothing is built or loaded."""
    from capsafe.backends import BACKENDS

    ctx = object()  # the data context a task or prompt set factory is given first
    if cfg.task is not None:
        TASKS.check_args(cfg.task.name, "task.args", ctx=ctx, path=cfg.task.path, **cfg.task.args)
    for i, s in enumerate(cfg.safety):
        PROMPT_SETS.check_args(s.name, f"safety.{i}.args", ctx, path=s.path, **s.args)
    g = cfg.generation
    BACKENDS.check_args(g.backend, "generation", model="m", batch_size=g.batch_size,
                        device=g.device, trust_remote_code=False, **g.args)  # fmt: skip
    check_trackers(cfg.finetune.report_to if cfg.finetune else [])  # not after loading a base
    from capsafe.judges.embeddings import text_vectors

    text_vectors()  # $CAPSAFE_EMBEDDING_MEMORY is read, and refused if bad, now
    for i, spec in enumerate(cfg.judges):
        where = f"judges.{i}.args"
        JUDGES.check_args(spec.name, where, **spec.args)
        # Built for nothing (model judges load their model when they first judge, embedding
        # judges fit on first use), so a value a judge refuses fails before any work; the
        # organism's guard, not built yet on a fresh machine, only has its args checked.
        if guard_pending(spec.args, cfg.organism.dir):
            continue
        args = resolve_judge_args(spec.args, cfg.organism.dir)
        if _takes_reference(spec.name, args) and cfg.base_models:
            args["reference_model"] = cfg.base_models[0].name  # each base in turn, later
        judge = JUDGES.create(spec.name, where=where, **args)
        if hasattr(judge, "close"):
            judge.close()
    if not cfg.served:  # a base path that is neither a folder nor a hub id: now, not after
        from capsafe.backends.loading import resolve_source  # building the organism

        for b in cfg.base_models:
            if b.path != BUILTIN_ORGANISM:
                resolve_source(b.path, what=f"base model {b.name!r}")
    for i, a in enumerate([] if cfg.served else cfg.adapters):  # a folder that is no adapter:
        folder = Path(a.path)  # say so now, not after building or loading the base
        if folder.exists() and not (folder / "adapter_config.json").is_file():
            raise UserError(f"adapters.{i}: {folder} has no adapter_config.json, so it is not "
                            "a PEFT adapter folder")  # fmt: skip


def judge_instances(
    cfg: ExperimentConfig,
    spec: JudgeSpec,
    base_dirs: dict[str, Path],
    gens: Sequence[GenerationRow],
    base_of: dict[str, str],
) -> list[tuple[Judge, list[GenerationRow]]]:
    """The judge(s) of one spec, each with the responses it judges.

    `model: builtin:organism-guard` names the organism's tiny guard. A judge that takes a
    `reference_model` (the coherence judge's perplexity) and is given none gets each base
    model in turn, judging that base's responses.
    """
    # The judge loads that base afresh instead of borrowing the generation backend: that one
    # is closed before judging (kept open, a vLLM engine holds most of the GPU the guard
    # judges need), it is absent on a resumed run, and it may be another backend (vLLM)
    # whose log-probs differ from the transformers ones the stored judge args promise.
    args = resolve_judge_args(spec.args, cfg.organism.dir)
    where = f"judge {spec.name!r} args"
    if not _takes_reference(spec.name, args):
        return [(JUDGES.create(spec.name, where=where, **args), list(gens))]
    out = [
        (
            JUDGES.create(spec.name, where=where, **args, reference_model=str(folder)),
            [g for g in gens if base_of[g.model_key] == name],
        )
        for name, folder in base_dirs.items()
    ]
    # A served base has no local weights to be the reference: judged without one (the
    # judgment records that perplexity was skipped).
    served = {b.name for b in cfg.base_models} if cfg.served else set()
    if rest := [g for g in gens if base_of[g.model_key] in served]:
        out.append((JUDGES.create(spec.name, where=where, **args), rest))
    return out


def _takes_reference(name: str, args: dict[str, Any]) -> bool:
    """Whether judge `name` takes a reference_model the config does not give (the pipeline
    then gives it each base model in turn)."""
    factory = JUDGES.factory(name)
    return "reference_model" in inspect.signature(factory).parameters and (
        "reference_model" not in args
    )


def _judge(
    spec: JudgeSpec, judge: Judge, gens: Sequence[GenerationRow], store: Store, progress: bool
) -> int:
    """Judge every one of `gens` this judge has not judged yet; returns how many."""
    args = judge_args_json(spec)
    keyed = {judgment_key(g.key, judge.name, judge.version, args): g for g in gens}
    stored = store.existing_keys("judgments", list(keyed))
    todo = [(k, g) for k, g in keyed.items() if k not in stored]
    if not todo:
        return 0
    written = 0
    bar = progress_bar(len(todo), f"judge {judge.name}", progress)
    try:
        for i in range(0, len(todo), JUDGE_BATCH):
            batch = todo[i : i + JUDGE_BATCH]
            verdicts = judge.judge(
                [JudgeItem(g.prompt, g.response, g.category, g.finish_reason) for _, g in batch]
            )
            written += store.put_judgments(
                [
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
            )
            bar.update(len(batch))
    finally:
        bar.close()
    return written


def _score(inputs: Inputs, stored_gens: Sequence[GenerationRow], store: Store) -> int:
    """Score every stored response to this task's test items that is not scored yet."""
    task = inputs.task
    if task is None or inputs.loglik_task:  # log-likelihood scores are written with the choice
        return 0
    sets = {r.source for r in inputs.test}
    gens = [g for g in stored_gens if g.kind == "task" and g.prompt_set in sets
            and g.finish_reason != TOO_LONG]  # fmt: skip
    keyed = {score_key(g.key, task.name, task.version): g for g in gens}
    stored = store.existing_keys("scores", list(keyed))
    # The loaded record (with its meta) where the item is still in the test split; a stored
    # response to an item since dropped is scored from what the store kept of it.
    loaded = {(r.source, r.id, r.text): r for r in inputs.test}
    rows = []
    for k, g in keyed.items():
        if k in stored:
            continue
        record = loaded.get((g.prompt_set, g.prompt_id, g.prompt)) or PromptRecord(
            g.prompt_id, g.prompt, g.prompt_set, "task", g.category, g.reference
        )
        s = task.score(g.response, record)
        rows.append(ScoreRow(k, g.key, task.name, task.version, s.correct, s.extracted, s.value))
    return store.put_scores(rows)


def describe_plan(cfg: ExperimentConfig, progress: bool = False) -> dict[str, Any]:
    """The dry run: what the config will do, how much of it is stored already, what it
    costs, and which of its data and models are not on this machine yet."""
    missing: list[str] = []
    with hub_offline():  # what is not here is planned around, not downloaded
        inputs = load_inputs(cfg, progress, missing)
    summary = summarise(cfg, *inputs.responses_per_model(cfg.formats), len(cfg.adapters))
    out: dict[str, Any] = {"plan": summary.__dict__, "stored": {}}
    out["cost"] = [step.__dict__ for step in estimate(cfg, inputs)]
    out["not_here"] = missing + ([] if cfg.served else _models_not_here(cfg))
    db = cfg.output_dir / STORE_FILE if cfg.output_dir else None
    if db is not None and db.exists():
        with Store(db) as store:
            out["stored"] = {
                t: store.count(t)
                for t in ("runs", "checkpoints", "generations", "judgments", "scores")
            }
    if cfg.served:
        out["endpoint"] = _endpoint_plan(
            cfg, inputs, db if db is not None and db.exists() else None
        )
    return json.loads(json.dumps(out))


def _models_not_here(cfg: ExperimentConfig) -> list[str]:
    """A line for each base model, adapter and judge model whose files are not on this
    machine (downloaded from the hub when the run first needs them)."""
    named = [(f"base model {b.name!r}", b.path) for b in cfg.base_models]
    named += [(f"adapter {a.name!r}", a.path) for a in cfg.adapters]
    for spec in cfg.judges:
        if model := judge_model(spec.name, spec.args):
            named.append((f"judge {spec.name!r}", model))
    return [f"{what}: {ref} is not on this machine (not a local folder, not in the hub "
            "cache); it is downloaded when the run first needs it"
            for what, ref in named
            if ref not in (BUILTIN_ORGANISM, BUILTIN_GUARD)  # built here, not downloaded
            and local_model_folder(ref, cfg.organism.dir) is None]  # fmt: skip


def _served_keys(cfg: ExperimentConfig) -> list[str]:
    """The model keys of a served experiment's bases and adapters (names and revisions)."""
    keys = []
    for b in cfg.base_models:
        keys.append(served_key(b))
        keys += [served_key(a, keys[-1]) for a in cfg.adapters if cfg.adapter_base(a) == b.name]
    return keys


def _endpoint_plan(cfg: ExperimentConfig, inputs: Inputs, db: Path | None) -> dict[str, Any]:
    """What a served run will send: the requests not stored yet and their prompts' size
    (tokens when the backend is given the served model's tokenizer, else characters)."""
    records = _generated_records(inputs)
    jobs = [j for key in _served_keys(cfg)
            for j in generation_jobs(key, records, cfg.formats, inputs.decodings)]  # fmt: skip
    if db is not None:
        with Store(db) as store:
            stored = store.existing_keys("generations", [j.key for j in jobs])
        jobs = [j for j in jobs if j.key not in stored]
    requests = [build_request(j.record, j.format, j.decoding, j.sample_seed) for j in jobs]
    out: dict[str, Any] = {
        "requests": len(requests),
        "prompt_characters": sum(len(m.content) for r in requests for m in r.messages),
        "max_completion_tokens": sum(r.max_new_tokens for r in requests),
        "prompt_tokens": None,
    }
    tokenizer = cfg.generation.args.get("tokenizer")
    if tokenizer and requests:
        from capsafe.backends.loading import encode_request, load_tokenizer

        tok = load_tokenizer(str(tokenizer))
        out["prompt_tokens"] = sum(len(encode_request(tok, r)) for r in requests)
    return out
