"""From a config to the graph of steps, each with the key of the result it produces.

    finetune(base, task, hparams, seed)           -> one adapter per epoch     (RunPlan)
    generate(model, prompt, format, decoding, s)  -> a response                (GenerationJob)
    judge(response, judge)                        -> a judgment                (judgment_key)
    score(response on a task item)                -> correct or not            (score_key)

Keys are digests of everything that determines the result (capsafe.keys), so a step
whose key is stored is skipped. Functions here are pure: no model is loaded, nothing is
written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capsafe.config import (
    AdapterSpec,
    DecodingSpec,
    ExperimentConfig,
    FormatSpec,
    JudgeSpec,
    ModelSpec,
    RecipeSpec,
)
from capsafe.data.base import DataContext, Task
from capsafe.finetune.mixing import TrainingData
from capsafe.finetune.recipes import Recipe
from capsafe.keys import canonical_json, digest, judge_identity_args
from capsafe.records import PromptRecord, TrainExample

# Bump when fine-tuning code changes what a run with the same inputs produces.
FINETUNE_RECIPE_VERSION = "1"
BASELINE = "baseline"


@dataclass(frozen=True)
class RoundData:
    """One round's training data: its task, its data recipe and the examples they make."""

    epochs: int | None  # None: the grid's epochs (a single-round run)
    task_id: str  # name@version
    recipe: Recipe  # the recipe whose mixes made `data`
    data: TrainingData


@dataclass(frozen=True)
class RecipePlan:
    """One level of the recipe factor, with the data of each of its rounds (loaded once)."""

    spec: RecipeSpec
    recipe: Recipe
    rounds: tuple[RoundData, ...]

    @property
    def multi_round(self) -> bool:
        return self.rounds[0].epochs is not None


@dataclass(frozen=True)
class Inputs:
    """The data an experiment runs on, loaded once. An evaluation may have no task."""

    ctx: DataContext
    task: Task | None
    task_id: str  # name@version, or "none"
    train: list[TrainExample]
    test: list[PromptRecord]
    safety: list[PromptRecord]
    recipes: list[RecipePlan] = field(default_factory=list)  # with each round's data
    # Each record source's decoding (a prompt set's or the task's; see resolve_decoding).
    decodings: dict[str, DecodingSpec] = field(default_factory=dict)

    def responses_per_model(self, formats: Sequence[FormatSpec]) -> tuple[int, int]:
        """The responses one model gives to the task's and to the safety prompts (an item of
        a log-likelihood task is one, its chosen option, whatever the sample seeds)."""
        seeds = {s: len(d.sample_seeds) for s, d in self.decodings.items()}
        n_task = sum(1 if self.loglik_task else seeds[r.source] for r in self.test)
        return n_task * len(formats), sum(seeds[r.source] for r in self.safety) * len(formats)

    @property
    def loglik_task(self) -> bool:
        """The task scores options by log-likelihood: its test items are not generated."""
        return self.task is not None and getattr(self.task, "scoring", "generate") == "loglik"


@dataclass(frozen=True)
class RoundPlan:
    index: int  # 1-based
    epochs: int
    first_epoch: int  # the run-wide number of this round's first epoch (epochs continue)
    data: RoundData


@dataclass(frozen=True)
class RunPlan:
    """One fine-tuning run: base x task x recipe x hyperparameter setting x seed."""

    run_id: str
    base_name: str
    base_key: str
    hparams: dict[str, Any]  # learning_rate, rank, alpha, epochs (over all rounds)
    seed: int
    out_dir: Path
    recipe: RecipePlan
    rounds: tuple[RoundPlan, ...]
    settings: dict[str, Any]  # what the run id digests besides the above; stored as is

    @property
    def epochs(self) -> int:
        return int(self.hparams["epochs"])

    @property
    def level(self) -> str:
        return self.recipe.spec.level


def examples_digest(examples: Sequence[TrainExample]) -> str:
    return digest(examples=[(e.prompt, e.response) for e in examples])


def finetune_settings(cfg: ExperimentConfig, recipe: RecipePlan | None = None) -> dict[str, Any]:
    """Everything besides the grid point, seed and first round's data that shapes a run.

    The baseline recipe in one round adds nothing, so its runs keep the ids they had before
    recipes existed; any other recipe adds its name, version, arguments, label and rounds.
    """
    assert cfg.finetune is not None
    # report_to only says where training metrics are sent: it shapes no run.
    ft = cfg.finetune.model_dump(
        mode="json", exclude={"grid", "seeds", "format", "recipes", "rounds", "report_to"}
    )
    spec = recipe.spec if recipe else None
    fmt = cfg.training_format(spec)
    if fmt is not None:  # the layout of the training conversations, not the format's name
        from capsafe.formats import system_text

        ft["format"] = {"chat_template": fmt.chat_template, "system": system_text(fmt)}
    out = {**ft, "recipe": FINETUNE_RECIPE_VERSION}
    if recipe is not None and (recipe.recipe.name != BASELINE or recipe.multi_round
                               or spec.label is not None):  # fmt: skip
        r = recipe.recipe
        out["recipe_spec"] = {
            "name": r.name,
            "version": r.version,
            "args": dict(r.args),
            "label": recipe.spec.level,
            "rounds": [
                {
                    "epochs": rd.epochs,
                    "task": rd.task_id,
                    "data_recipe": [rd.recipe.name, rd.recipe.version, dict(rd.recipe.args)],
                    "train": examples_digest(rd.data.examples),
                }
                for rd in recipe.rounds
            ]
            if recipe.multi_round
            else None,
        }
    return out


def plan_runs(
    cfg: ExperimentConfig, base_name: str, base_key: str, recipes: Sequence[RecipePlan]
) -> list[RunPlan]:
    """Every run of one base: recipe x grid setting x seed."""
    assert cfg.output_dir is not None
    if cfg.finetune is None:
        return []
    plans = []
    for recipe in recipes:
        settings = finetune_settings(cfg, recipe)
        first = recipe.rounds[0]
        for grid_point in cfg.finetune.settings():
            hparams = dict(grid_point)
            if recipe.multi_round:  # the rounds set the epochs
                hparams["epochs"] = sum(rd.epochs or 0 for rd in recipe.rounds)
            for seed in cfg.finetune.seeds:
                run_id = digest(
                    base=base_key,
                    task=first.task_id,
                    train=examples_digest(first.data.examples),
                    hparams=hparams,
                    seed=seed,
                    settings=settings,
                )
                out = cfg.output_dir / "runs" / base_name / run_id[:16]
                rounds, start = [], 1
                for i, rd in enumerate(recipe.rounds, 1):
                    n = rd.epochs or int(hparams["epochs"])
                    rounds.append(RoundPlan(i, n, start, rd))
                    start += n
                plans.append(
                    RunPlan(run_id, base_name, base_key, hparams, seed, out, recipe,
                            tuple(rounds), settings)
                )  # fmt: skip
    return plans


def adapter_model_key(base_key: str, adapter_hash: str) -> str:
    return digest(base=base_key, adapter=adapter_hash)


def base_model_key(content_hash: str) -> str:
    return digest(base=content_hash, adapter=None)


def served_key(m: ModelSpec | AdapterSpec, base_key: str | None = None) -> str:
    """The model key of a served model (a base, or with base_key an adapter on it): no
    weights here to hash, so its served name and the revision the user gave."""
    identity = digest(served=m.path, revision=m.revision)
    return base_model_key(identity) if base_key is None else adapter_model_key(base_key, identity)


@dataclass(frozen=True)
class GenerationJob:
    key: str
    model_key: str
    record: PromptRecord
    format: FormatSpec
    decoding: DecodingSpec  # its prompt set's or task's (Inputs.decodings)
    sample_seed: int


def decoding_params(decoding: DecodingSpec) -> dict[str, Any]:
    """The decoding settings that shape one response (the seed list is not one of them)."""
    return decoding.model_dump(mode="json", exclude={"sample_seeds"})


def generation_key(
    model_key: str, record: PromptRecord, fmt: FormatSpec, decoding: DecodingSpec, sample_seed: int
) -> str:
    return digest(
        model=model_key,
        prompt_set=record.source,
        prompt_id=record.id,
        prompt=record.text,
        format=fmt,
        decoding=decoding_params(decoding),
        sample_seed=sample_seed,
    )


def generation_jobs(
    model_key: str,
    records: Sequence[PromptRecord],
    formats: Sequence[FormatSpec],
    decodings: Mapping[str, DecodingSpec],
) -> list[GenerationJob]:
    """Every response a model gives: each record under each format, once per sample seed of
    the decoding of the record's source (`decodings`: source -> its decoding)."""
    return [
        GenerationJob(generation_key(model_key, r, f, d, s), model_key, r, f, d, s)
        for f in formats
        for r in records
        for d in (decodings[r.source],)
        for s in d.sample_seeds
    ]


# The "decoding" of a multiple-choice item scored by its options' log-likelihoods.
LOGLIK_DECODING = {"scoring": "loglik"}


def choice_key(
    model_key: str, record: PromptRecord, fmt: FormatSpec, choices: Sequence[str]
) -> str:
    """The key of a multiple-choice item scored by log-likelihood (no sampling involved)."""
    return digest(
        model=model_key,
        prompt_set=record.source,
        prompt_id=record.id,
        prompt=record.text,
        format=fmt,
        decoding=LOGLIK_DECODING,
        choices=list(choices),
    )


def judge_args_json(spec: JudgeSpec) -> str:
    """The judge arguments that shape verdicts (not batch_size and the like), as stored and
    as keyed: one definition for the judgment key and the judge's label."""
    return canonical_json(judge_identity_args(spec.args))


def judgment_key(generation_key: str, judge: str, judge_version: str, args_json: str) -> str:
    return digest(generation=generation_key, judge=judge, version=judge_version, args=args_json)


def score_key(generation_key: str, task: str, task_version: str) -> str:
    return digest(generation=generation_key, task=task, version=task_version)


@dataclass(frozen=True)
class PlanSummary:
    """What a run of the config will do; the dry-run prints it."""

    bases: int
    runs: int
    checkpoints: int
    models: int  # bases + checkpoints: each is generated on
    prompts_per_model: int
    generations: int
    judgments: int
    adapters: int = 0  # ready-made checkpoints (counted in checkpoints), not trained here


def summarise(
    cfg: ExperimentConfig, n_task: int, n_safety: int, n_adapters: int = 0
) -> PlanSummary:
    """n_task, n_safety: the responses one model gives to the task's and the safety sets'
    prompts (prompts x formats x sample seeds)."""
    ft = cfg.finetune
    n_recipes = len(ft.recipes) if ft else 0
    n_runs = len(ft.settings()) * len(ft.seeds) * len(cfg.base_models) * n_recipes if ft else 0
    n_ckpt = 0
    for recipe in ft.recipes if ft else []:  # at most: stop_at_target may train fewer
        rounds = ft.recipe_rounds(recipe)
        per_seed = (
            sum(s["epochs"] for s in ft.settings())
            if rounds is None
            else len(ft.settings()) * sum(r.epochs for r in rounds)
        )
        n_ckpt += len(cfg.base_models) * len(ft.seeds) * per_seed
    n_runs, n_ckpt = n_runs + n_adapters, n_ckpt + n_adapters
    n_models = len(cfg.base_models) + n_ckpt
    return PlanSummary(
        bases=len(cfg.base_models),
        runs=n_runs,
        checkpoints=n_ckpt,
        models=n_models,
        prompts_per_model=n_task + n_safety,
        generations=n_models * (n_task + n_safety),
        judgments=n_models * n_safety * len(cfg.judges),
        adapters=n_adapters,
    )
