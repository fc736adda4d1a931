"""The fine-tuning step of an experiment: each recipe's data, and one run through its rounds.

    recipes = load_recipes(cfg, ctx, task, train, exclude=evaluation_prompts)   # once
    rows, trained = finetune_run(cfg, run, base_dir, store, evaluate, progress)   # per run

A run trains its rounds in order; round k continues LoRA training from round k-1's last
adapter (the adapter's weights carry over; the optimizer and learning-rate schedule start
afresh, as a new fine-tuning job on the previous result would). Epochs are numbered across
rounds (round 2 of a 3 + 2 run holds epochs 4 and 5). Each round is its own resumable
fine-tuning folder, so a run killed in any round resumes there. After each epoch the
recipe's post-epoch step runs (SafeLoRA's projection: the projected adapter, written beside
the raw one, is the checkpoint evaluated); stop_at_target asks `evaluate` for the epoch's
capability accuracy and ends the run at the first epoch reaching its target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from capsafe.config import ExperimentConfig, RecipeSpec, TaskSpec
from capsafe.data import TASKS, DataContext, Task
from capsafe.finetune.checkpoints import failure, stopped_epoch
from capsafe.finetune.mixing import training_data
from capsafe.finetune.recipes import Recipe, RecipeError, build_recipe
from capsafe.finetune.tracking import TRACKING_DIR, Tracking
from capsafe.formats import system_text
from capsafe.keys import canonical_json, folder_content_hash
from capsafe.plan import RecipePlan, RoundData, RoundPlan, RunPlan, adapter_model_key
from capsafe.progress import say, warn
from capsafe.records import TrainExample
from capsafe.store import CheckpointRow, FailureRow, ModelRow, RunRow, Store

SAFELORA_PREFIX = "safelora-"
# evaluate(model row of a checkpoint) -> its capability accuracy (0-1), for stop_at_target
Evaluate = Callable[[ModelRow], float]


def build_recipes(cfg: ExperimentConfig) -> list[tuple[RecipeSpec, Recipe]]:
    """Every recipe of the config, built (a RecipeError naming the field if one cannot be)."""
    if cfg.finetune is None:
        return []
    out = []
    for i, spec in enumerate(cfg.finetune.recipes):
        recipe = build_recipe(spec.name, spec.args, f"finetune.recipes.{i}")
        if recipe.stop_accuracy is not None and cfg.task is None:
            raise RecipeError(f"finetune.recipes.{i}: stop_at_target needs a capability task")
        rounds = cfg.finetune.recipe_rounds(spec) or []
        for k, rd in enumerate(rounds):
            if rd.recipe is not None:
                data = build_recipe(rd.recipe, rd.args, f"finetune.recipes.{i} round {k + 1}")
                if not data.is_data_recipe:
                    raise RecipeError(
                        f"finetune.recipes.{i} round {k + 1}: {rd.recipe!r} is not a data "
                        "recipe (a round may use baseline, safety_mix or poison)"
                    )
        out.append((spec, recipe))
    return out


def load_recipes(
    cfg: ExperimentConfig,
    ctx: DataContext,
    task: Task,
    train: Sequence[TrainExample],
    exclude: Sequence[str],
) -> list[RecipePlan]:
    """Each recipe with the training data of each of its rounds (examples in `exclude`, the
    experiment's evaluation prompts, are never mixed in)."""
    assert cfg.finetune is not None and cfg.task is not None
    plans = []
    for spec, recipe in build_recipes(cfg):
        rounds = cfg.finetune.recipe_rounds(spec)
        if rounds is None:
            data = training_data(recipe, train, ctx, exclude)
            plans.append(RecipePlan(spec, recipe, (RoundData(None, _task_id(task), recipe, data),)))
            continue
        made = []
        for rd in rounds:
            rd_task, rd_train = (task, train) if rd.task is None else _round_task(rd.task, ctx)
            # Without a recipe of its own, a round uses the run's recipe's mixes (if any).
            rd_recipe = recipe if rd.recipe is None else build_recipe(rd.recipe, rd.args, "round")
            data = training_data(rd_recipe, rd_train, ctx, exclude)
            made.append(RoundData(rd.epochs, _task_id(rd_task), rd_recipe, data))
        plans.append(RecipePlan(spec, recipe, tuple(made)))
    return plans


def _task_id(task: Task) -> str:
    return f"{task.name}@{task.version}"


def _round_task(spec: TaskSpec, ctx: DataContext) -> tuple[Task, list[TrainExample]]:
    task = TASKS.create(spec.name, where="a round's task.args", ctx=ctx, path=spec.path,
                        **spec.args)  # fmt: skip
    train = task.train_examples()[: spec.train_limit]
    if not train:
        raise RecipeError(f"round task {spec.name!r}: the train split is empty")
    return task, train


def round_dir(run: RunPlan, rd: RoundPlan) -> Path:
    return run.out_dir if len(run.rounds) == 1 else run.out_dir / f"round-{rd.index}"


def expected_epochs(run: RunPlan) -> int:
    """How many epochs the run has when finished: all, or up to where stop_at_target ended it
    or training diverged (read from the round folders; nothing is loaded)."""
    for rd in run.rounds:
        folder = round_dir(run, rd)
        stop = stopped_epoch(folder) if folder.is_dir() else None
        if stop is not None:
            return rd.first_epoch + stop - 1
        failed = failure(folder) if folder.is_dir() else None
        if failed is not None:
            return rd.first_epoch + failed["epochs_kept"] - 1
    return run.epochs


def run_row(run: RunPlan) -> RunRow:
    """The stored row of a run; its settings are the ones its id digests."""
    task_id = run.rounds[0].data.task_id
    hparams, settings = canonical_json(run.hparams), canonical_json(run.settings)
    return RunRow(
        run.run_id, run.base_name, run.base_key, task_id, hparams, run.seed, run.epochs, settings
    )


def stored_run(run: RunPlan, base_dir: Path, store: Store) -> list[ModelRow] | None:
    """The model rows of a run whose every epoch is stored (its adapters still on disk), or
    None when some epoch is still to train."""
    done = {c.epoch: c for c in store.checkpoints(run.run_id)}
    want = expected_epochs(run)
    if all(e in done and Path(done[e].adapter_dir).is_dir() for e in range(1, want + 1)):
        return [checkpoint_model(run, base_dir, done[e]) for e in range(1, want + 1)]
    return None


def finetune_run(
    cfg: ExperimentConfig,
    run: RunPlan,
    base_dir: Path,
    store: Store,
    evaluate: Evaluate,
    progress: bool,
) -> tuple[list[ModelRow], int]:
    """Fine-tune one run (or reuse its stored epochs); returns its checkpoints' model rows and
    how many epochs were trained now."""
    finished = stored_run(run, base_dir, store)
    if finished is not None:
        return finished, 0
    done = {c.epoch: c for c in store.checkpoints(run.run_id)}
    store.put_run(run_row(run))
    say(progress, f"fine-tuning {run.base_name} {run_label(run)} ({len(done)}/{run.epochs} stored)")
    recipe = run.recipe.recipe
    projector = _projector(cfg, recipe, base_dir)
    rows: list[ModelRow] = []
    init, steps_before, trained = None, 0, 0
    for rd in run.rounds:

        def checkpoint(ck, rd: RoundPlan = rd, offset: int = steps_before) -> ModelRow:
            return _store_epoch(run, rd, ck, offset, base_dir, store, projector)

        stop_when = None
        if recipe.stop_accuracy is not None:

            def stop_when(ck, checkpoint=checkpoint, target=recipe.stop_accuracy) -> bool:
                return evaluate(checkpoint(ck)) >= target - 1e-12

        # Each epoch is stored as soon as it is on disk (so that, on Ray, it is generated on
        # while the run trains on), and again, idempotently, from the round's full list.
        epochs = _train_round(cfg, run, rd, base_dir, init, stop_when, checkpoint, progress)
        for ck in epochs:
            rows.append(checkpoint(ck))
        trained += sum(1 for ck in epochs if rd.first_epoch + ck.epoch - 1 not in done)
        failed = failure(round_dir(run, rd))
        if failed is not None:
            kept = len(rows)
            store.put_failure(FailureRow(run.run_id, failed["reason"], failed["step"], kept))
            warn(f"run {run.base_name} {run_label(run)} FAILED and is not evaluated past epoch "
                 f"{kept}: training diverged ({failed['reason']})")  # fmt: skip
            break
        if len(epochs) < rd.epochs:  # stop_at_target ended the run in this round
            break
        init, steps_before = epochs[-1].adapter_dir, steps_before + epochs[-1].steps
    return rows, trained


def _train_round(
    cfg, run: RunPlan, rd: RoundPlan, base_dir: Path, init, stop_when, on_epoch, progress
):
    from capsafe.finetune import LoraHparams, finetune_lora

    ft = cfg.finetune
    assert ft is not None
    h = run.hparams
    hparams = LoraHparams(
        learning_rate=h["learning_rate"],
        rank=h["rank"],
        alpha=h["alpha"],
        epochs=rd.epochs,
        dropout=ft.dropout,
        target_modules=ft.target_modules
        if isinstance(ft.target_modules, str)
        else tuple(ft.target_modules),
        batch_size=ft.batch_size,
        max_length=ft.max_length,
        warmup_ratio=ft.warmup_ratio,
        scheduler=ft.scheduler,
    )
    fmt = cfg.training_format(run.recipe.spec)
    base_spec = next(b for b in cfg.base_models if b.name == run.base_name)
    if len(run.rounds) > 1:
        say(progress, f"  round {rd.index}/{len(run.rounds)}: {rd.epochs} epoch(s), "
                      f"{len(rd.data.data.examples)} examples")  # fmt: skip
    return finetune_lora(
        str(base_dir),
        rd.data.data.examples,
        hparams,
        run.seed,
        round_dir(run, rd),
        progress=progress,
        trust_remote_code=base_spec.trust_remote_code,
        system_prompt=None if fmt is None else system_text(fmt),
        device=cfg.generation.device,
        init_adapter=init,
        on_epoch=on_epoch,
        kl_beta=run.recipe.recipe.kl_beta,
        stop_when=stop_when,
        tracking=_tracking(cfg, run, rd),
    )


def _tracking(cfg: ExperimentConfig, run: RunPlan, rd: RoundPlan) -> Tracking | None:
    assert cfg.finetune is not None and cfg.output_dir is not None
    if not cfg.finetune.report_to:
        return None
    return Tracking(tuple(cfg.finetune.report_to), tracker_run_name(run, rd),
                    cfg.output_dir / TRACKING_DIR, project=cfg.name)  # fmt: skip


def _projector(cfg: ExperimentConfig, recipe: Recipe, base_dir: Path):
    if recipe.safelora is None:
        return None
    from capsafe.finetune.safelora import SafeLoraProjector
    from capsafe.models import resolve_unaligned

    unaligned = resolve_unaligned(recipe.safelora.unaligned_path, cfg.organism.dir,
                                  cfg.organism.seed)  # fmt: skip
    return SafeLoraProjector(base_dir, unaligned, recipe.safelora)


def _store_epoch(
    run: RunPlan, rd: RoundPlan, ck, steps_before: int, base_dir: Path, store: Store, projector
) -> ModelRow:
    """Store one epoch's checkpoint (projected first, for SafeLoRA); idempotent."""
    epoch = rd.first_epoch + ck.epoch - 1
    adapter = Path(ck.adapter_dir)
    if projector is not None:
        projected = adapter.with_name(SAFELORA_PREFIX + adapter.name)
        if not projected.is_dir():
            projector.project_adapter(adapter, projected)
        adapter = projected
    model_key = adapter_model_key(run.base_key, folder_content_hash(adapter, store))
    row = CheckpointRow(run.run_id, epoch, model_key, str(adapter), ck.train_loss,
                        steps_before + ck.steps)  # fmt: skip
    store.put_checkpoint(row)
    model = checkpoint_model(run, base_dir, row)
    store.put_model(model)
    return model


def checkpoint_model(run: RunPlan, base_dir: Path, c: CheckpointRow) -> ModelRow:
    return ModelRow(
        c.model_key, run.base_name, str(base_dir), run.base_key, run.run_id, c.epoch, c.adapter_dir
    )


def tracker_run_name(run: RunPlan, rd: RoundPlan) -> str:
    """A run's name in the trackers: its settings, then its run key's first 16 characters
    (its folder's name under runs/<base>/), so that no two runs share one; each round of a
    multi-round run is its own tracker run, `<name>/round-k`."""
    h = run.hparams
    parts = [run.base_name, run.level, f"lr{h['learning_rate']:g}", f"r{h['rank']}",
             f"a{h['alpha']}", f"s{run.seed}", run.run_id[:16]]  # fmt: skip
    name = "-".join(re.sub(r"[^A-Za-z0-9._=-]+", "_", p) for p in parts)
    return f"{name}/round-{rd.index}" if len(run.rounds) > 1 else name


def run_label(run: RunPlan) -> str:
    h = run.hparams
    what = f"lr={h['learning_rate']:g} r={h['rank']} alpha={h['alpha']} seed={run.seed}"
    return what if run.level == "baseline" else f"{run.level} {what}"
