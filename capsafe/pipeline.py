"""Runs an experiment's plan: fine-tune, generate, judge, score, report.

The steps (capsafe.steps) run in this process (`_execute_here`), or on a Ray cluster
(execution.engine: ray, capsafe.cluster); either way this process loads the inputs, stores
the bases and is the store's one writer. Each step first asks the store which of its keys
are done and does only the rest, so a rerun does no stored work, an interrupted run
resumes, and adding a judge generates nothing. Results are written batch by batch; a crash
loses at most the batches in flight.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capsafe.config import (
    BUILTIN_ORGANISM,
    AdapterSpec,
    ConfigError,
    DecodingOverride,
    DecodingSpec,
    ExperimentConfig,
    resolve_decoding,
)
from capsafe.cost import StepCost, estimate
from capsafe.data import TASKS, DataContext, load_prompt_set, sizes
from capsafe.data.base import PROMPT_SETS, EmptySetError, take
from capsafe.data.decoding import default_decoding
from capsafe.data.files import HubUnavailable, hub_offline
from capsafe.errors import UnitsFailed, UserError
from capsafe.finetune.checkpoints import non_finite_tensors
from capsafe.finetune.tracking import check_trackers
from capsafe.formats import build_request
from capsafe.judges import JUDGES
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
    Inputs,
    PlanSummary,
    RunPlan,
    adapter_model_key,
    base_model_key,
    generation_jobs,
    plan_runs,
    served_key,
    summarise,
)
from capsafe.records import (
    PromptKind,
    PromptRecord,
    TrainExample,
)
from capsafe.steps import (
    Counts,
    capability_evaluator,
    generate_local,
    generated_records,
    has_pending,
    judge_groups,
    judge_local,
    judged_generations,
    make_judge,
    score_rows,
    takes_reference,
    warn_too_long,
)
from capsafe.store import (
    CheckpointRow,
    ModelRow,
    RunRow,
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


@dataclass
class BaseWork:
    """One base model's part of the plan: its row, its local folder (None when served), the
    models already made (the base and the config's adapters) and its fine-tuning runs."""

    row: ModelRow
    folder: Path | None
    models: list[ModelRow]
    runs: list[RunPlan]


def _run_experiment(cfg: ExperimentConfig, *, progress: bool, report: bool) -> RunOutcome:
    start = time.monotonic()
    assert cfg.output_dir is not None
    check_config(cfg)  # a misspelt name or argument fails now, not after fine-tuning
    inputs = load_inputs(cfg, progress)
    summary = summarise(cfg, *inputs.responses_per_model(cfg.formats), len(cfg.adapters))
    clock = StepClock()
    on_ray = cfg.execution.engine == "ray"
    with ExitStack() as stack:
        cluster = None
        if on_ray and not (cfg.output_dir / STORE_FILE).exists():
            # A first run joins the cluster and checks it before anything is stored, so a
            # cluster that cannot run the plan leaves no folder behind.
            cluster = stack.enter_context(_ray_cluster(cfg))
        store = stack.enter_context(Store(cfg.output_dir / STORE_FILE))
        store.set_meta("config", cfg.model_dump_json())
        bases = prepare_bases(cfg, inputs, store)
        if on_ray and cluster is None and has_pending(cfg, inputs, store, bases):
            cluster = stack.enter_context(_ray_cluster(cfg))  # a rerun with nothing to do: none
        if cluster is not None:
            counts = cluster.execute(inputs, store, bases, clock, progress)
        elif on_ray:
            counts = Counts()
        else:
            counts = _execute_here(cfg, inputs, store, bases, clock, progress)
        report_path = None
        if report:
            from capsafe.report import write_report

            # A rerun that wrote nothing keeps the report it rendered last time.
            report_path = write_report(store, cfg.output_dir / REPORT_FILE, keep_current=True)
    if counts.failures:  # the rest of the run is stored, and in the report
        raise UnitsFailed(counts.failures)
    judged = sum(counts.judged_by.values())
    worked = counts.epochs or counts.generated or judged or counts.scored
    return RunOutcome(
        summary,
        counts.epochs,
        counts.generated,
        judged,
        counts.scored,
        report_path,
        time.monotonic() - start,
        clock.seconds,
        # The estimate beside the time taken, for a run that did some work: a rerun that did
        # none would pay for it (loading a tokenizer: 5 s of a warm quick start) for nothing.
        estimate(cfg, inputs) if worked else [],
        counts.judged_by,
    )


def _ray_cluster(cfg: ExperimentConfig) -> Any:
    from capsafe.cluster import ray_cluster

    return ray_cluster(cfg)


def prepare_bases(cfg: ExperimentConfig, inputs: Inputs, store: Store) -> list[BaseWork]:
    """Each base model resolved and stored, with its ready-made adapters and its runs."""
    out = []
    for base in cfg.base_models:
        folder = None
        if cfg.served:  # no weights here: the served name and the user's revision
            base_path, base_key = base.path, served_key(base)
        else:
            folder = resolve_model(base, cfg.organism.dir)
            base_path = str(folder)
            base_key = base_model_key(folder_content_hash(folder, store))
        row = ModelRow(base_key, base.name, base_path, base_key)
        store.put_model(row)
        models = [row] + _adapter_models(cfg, base.name, row, inputs, store)
        out.append(
            BaseWork(row, folder, models, plan_runs(cfg, base.name, base_key, inputs.recipes))
        )
    return out


def _execute_here(
    cfg: ExperimentConfig,
    inputs: Inputs,
    store: Store,
    bases: list[BaseWork],
    clock: StepClock,
    progress: bool,
) -> Counts:
    """The in-process executor: each base's runs in turn, then its generations; then each
    judge over every response; then the scores."""
    counts = Counts()
    for bw in bases:
        models = list(bw.models)
        evaluate = (capability_evaluator(cfg, inputs, store, progress, counts)
                    if inputs.task else None)  # fmt: skip
        for run in bw.runs:
            with clock("finetune"):
                rows, trained = finetune_run(cfg, run, bw.folder, store, evaluate, progress)
            for row in rows:
                store.put_model(row)
            models += rows
            counts.epochs += trained
        with clock("generate"):
            counts.generated += generate_local(cfg, models, inputs, store, progress)
    stored_gens = store.generations()  # read once: judging and scoring both filter it
    warn_too_long(stored_gens)
    safety_gens = judged_generations(stored_gens)
    base_dirs = {bw.row.base_name: bw.folder for bw in bases if bw.folder is not None}
    base_of = {m.model_key: m.base_name for m in store.models()}
    for spec in cfg.judges:
        step = f"judge {spec.name}"
        counts.judged_by[step] = 0
        with clock(step):
            for args, gens in judge_groups(cfg, spec, base_dirs, safety_gens, base_of):
                judge = make_judge(spec, args)
                try:
                    counts.judged_by[step] += judge_local(spec, judge, gens, store, progress)
                finally:
                    if hasattr(judge, "close"):
                        judge.close()
    with clock("score"):
        counts.scored = store.put_scores(score_rows(inputs, stored_gens, store))
    return counts


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
        if takes_reference(spec.name, args) and cfg.base_models:
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
    records = generated_records(inputs)
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
