"""The experiment schema: one YAML file, validated strictly on load.

Every key is typed; an unknown key is an error naming its path. Precedence is
defaults < YAML < command-line `key=value` overrides (dotted paths, values parsed as
YAML scalars or lists), so `capsafe run exp.yaml decoding.max_new_tokens=32` works.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic import Strict as StrictType

from capsafe.errors import UserError

BUILTIN_ORGANISM = "builtin:organism"
# Backends that talk to a server: the models are served ones, named, never loaded or hashed.
SERVED_BACKENDS = frozenset({"openai"})


# Numbers and switches are taken as written: `seeds: [true]` is not seed 1, `limit: 2.5` is
# not 2, `stratify: "no"` is not a switch, and no float may be inf or nan.
Int = Annotated[int, StrictType()]
Float = Annotated[float, StrictType()]  # an integer is a float too
Bool = Annotated[bool, StrictType()]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OrganismSpec(Strict):
    """Where the built-in model organism lives and which seed builds it."""

    dir: Path = Path(".capsafe/organism")  # relative paths are relative to the config file
    seed: Int = 0


class ModelSpec(Strict):
    """A base model: a hub id, a local folder, or "builtin:organism"."""

    name: str
    path: str
    revision: str | None = None
    trust_remote_code: Bool = False
    # Billions of parameters, for --dry-run's cost estimate only, where the weights are not
    # on this machine and capsafe.cost.KNOWN_PARAMS does not list the model.
    params: Float | None = Field(default=None, gt=0)


class DecodingSpec(Strict):
    """samples_per_prompt: N is shorthand for sample_seeds [0 .. N-1]."""

    max_new_tokens: Int = Field(default=64, gt=0)
    temperature: Float = Field(default=0.0, ge=0)  # 0 = greedy
    top_p: Float = Field(default=1.0, gt=0, le=1)
    sample_seeds: list[Int] = [0]  # one response per prompt per seed (greedy needs one)

    @model_validator(mode="before")
    @classmethod
    def _samples_per_prompt(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "samples_per_prompt" not in data:
            return data
        data = dict(data)
        n = data.pop("samples_per_prompt")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"samples_per_prompt must be a positive integer, got {n!r}")
        seeds = list(range(n))
        if "sample_seeds" in data and list(data["sample_seeds"]) != seeds:
            raise ValueError("give samples_per_prompt or sample_seeds, not both")
        data["sample_seeds"] = seeds
        return data

    @model_validator(mode="after")
    def _greedy_single_seed(self) -> DecodingSpec:
        if not self.sample_seeds:
            raise ValueError("sample_seeds must list at least one seed")
        if len(set(self.sample_seeds)) != len(self.sample_seeds):
            raise ValueError(f"sample_seeds repeat: {self.sample_seeds}")
        if self.temperature == 0 and len(self.sample_seeds) > 1:
            raise ValueError(
                "greedy decoding (temperature 0) gives one response; list one sample seed"
            )
        return self


class DecodingOverride(Strict):
    """A prompt set's or the task's own decoding: each field given replaces the experiment's.

    A response's decoding is, field by field: DecodingSpec's default < the set's or task's
    default (capsafe.data.decoding, e.g. 512 new tokens for HarmBench) < the experiment's
    `decoding`, for the fields it gives < the entry's own `decoding`.
    """

    max_new_tokens: Int | None = Field(default=None, gt=0)
    temperature: Float | None = Field(default=None, ge=0)
    top_p: Float | None = Field(default=None, gt=0, le=1)
    sample_seeds: list[Int] | None = None
    samples_per_prompt: Int | None = Field(default=None, gt=0)

    def given(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set, exclude_none=True)


def resolve_decoding(
    experiment: DecodingSpec, default: Mapping[str, Any], own: DecodingOverride | None
) -> DecodingSpec:
    """The decoding of one prompt set or task (precedence: see DecodingOverride); raises
    ValueError when the merged settings are not a decoding (greedy with two seeds)."""
    fields = {**default, **experiment.model_dump(include=experiment.model_fields_set)}
    mine = own.given() if own is not None else {}
    if "samples_per_prompt" in mine or "sample_seeds" in mine:
        fields.pop("sample_seeds", None)  # the entry's seeds replace the experiment's
        fields.pop("samples_per_prompt", None)
    try:
        return DecodingSpec(**{**fields, **mine})
    except ValidationError as e:
        err = e.errors()[0]
        msg, loc = str(err.get("ctx", {}).get("error", err["msg"])), err["loc"]
        raise ValueError(f"{'.'.join(map(str, loc))}: {msg}" if loc else msg) from None


class PromptSetSpec(Strict):
    """A registered prompt set; `path` reads a local file or folder instead of its source.

    `limit` takes a stable seeded subset; with `stratify` the subset keeps each category's
    share of the set (at least one prompt per category while the limit allows).
    """

    name: str
    path: Path | None = None
    limit: Int | None = Field(default=None, gt=0)
    stratify: Bool = False
    seed: Int = 0
    args: dict[str, Any] = {}
    decoding: DecodingOverride | None = None  # this set's own decoding (see DecodingOverride)


class TaskSpec(Strict):
    """The capability task fine-tuning aims at: train split to fine-tune, test split to score."""

    name: str
    path: Path | None = None
    train_limit: Int | None = Field(default=None, gt=0)
    test_limit: Int | None = Field(default=None, gt=0)
    args: dict[str, Any] = {}
    decoding: DecodingOverride | None = None  # the task's own decoding (see DecodingOverride)


class LoraGrid(Strict):
    """Lists are grid axes; the experiment runs their Cartesian product x seeds."""

    learning_rate: list[Float] = [2e-3]
    rank: list[Int] = [8]
    alpha: list[Int] = [16]
    epochs: list[Int] = [3]

    @field_validator("learning_rate", "rank", "alpha", "epochs")
    @classmethod
    def _non_empty_positive(cls, values: list[float]) -> list[float]:
        if not values:
            raise ValueError("must list at least one value")
        if any(v <= 0 for v in values):
            raise ValueError("values must be > 0")
        return values


class RoundSpec(Strict):
    """One round of a multi-round run: `epochs` more epochs, continuing from the previous
    round's last adapter, on this round's task (default: the experiment's) with this round's
    data recipe (default: the run's own recipe's data; a data recipe: baseline, safety_mix or
    poison, with `args`)."""

    epochs: Int = Field(gt=0)
    task: TaskSpec | None = None
    recipe: str | None = None
    args: dict[str, Any] = {}


class RecipeSpec(Strict):
    """A training recipe (capsafe list recipes): a level of the experiment's recipe factor.

    label names the level in the analysis and report (default: the recipe's name; give one
    when a recipe appears twice). rounds: train in these rounds instead of one round of the
    grid's epochs (default: finetune.rounds).
    """

    name: str
    label: str | None = None
    args: dict[str, Any] = {}
    rounds: list[RoundSpec] | None = None

    @property
    def level(self) -> str:
        return self.label or self.name


class FinetuneSpec(Strict):
    method: Literal["lora"] = "lora"
    # The levels of the recipe factor: what each run is trained on and how.
    recipes: list[RecipeSpec] = [RecipeSpec(name="baseline")]
    # Every recipe's rounds unless it gives its own (None: one round of the grid's epochs).
    rounds: list[RoundSpec] | None = None
    # The format (by name, from `formats`) training conversations are laid out in. Testing
    # with another format is the PTST recipe (train without a safety prompt, test with one).
    format: str | None = None
    grid: LoraGrid = LoraGrid()
    seeds: list[Int] = [0]
    batch_size: Int = Field(default=16, gt=0)
    max_length: Int = Field(default=256, ge=2)  # a prompt token and an answer token
    dropout: Float = Field(default=0.0, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    scheduler: Literal["constant", "linear", "cosine"] = "constant"
    warmup_ratio: Float = Field(default=0.0, ge=0, lt=1)
    # Trackers the Trainer's logs also go to ("none", a name or a list; read as a list):
    # capsafe.finetune.tracking. No part of a run's identity, so changing it retrains nothing.
    report_to: list[str] = []

    @field_validator("report_to", mode="before")
    @classmethod
    def _report_to(cls, value: Any) -> list[str]:
        from capsafe.finetune.tracking import tracker_names

        return tracker_names(value)

    @field_validator("recipes")
    @classmethod
    def _recipes(cls, recipes: list[RecipeSpec]) -> list[RecipeSpec]:
        if not recipes:
            raise ValueError("must list at least one recipe (e.g. {name: baseline})")
        levels = [r.level for r in recipes]
        dupes = sorted({n for n in levels if levels.count(n) > 1})
        if dupes:
            raise ValueError(f"recipe labels must be unique (give `label:`); repeated: {dupes}")
        return recipes

    @field_validator("rounds")
    @classmethod
    def _rounds(cls, rounds: list[RoundSpec] | None) -> list[RoundSpec] | None:
        if rounds is not None and not rounds:
            raise ValueError("list at least one round, or leave rounds out")
        return rounds

    def recipe_rounds(self, recipe: RecipeSpec) -> list[RoundSpec] | None:
        """The rounds a recipe trains in (None: one round of the grid's epochs)."""
        return recipe.rounds if recipe.rounds is not None else self.rounds

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if not seeds:
            raise ValueError("must list at least one seed")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds repeat: {seeds}")
        return seeds

    def settings(self) -> list[dict[str, float]]:
        """Every hyperparameter setting of the grid, in a stable order."""
        g = self.grid
        return [
            {"learning_rate": lr, "rank": r, "alpha": a, "epochs": e}
            for lr, r, a, e in itertools.product(g.learning_rate, g.rank, g.alpha, g.epochs)
        ]


SystemPreset = Literal["model_default", "none", "safety"]


class FormatSpec(Strict):
    """How a prompt becomes model input (see capsafe.formats).

    system: "model_default" sends no system message (the chat template adds its own, if it
    has one); "none" sends an empty one, overriding such a default; "safety" sends
    capsafe.formats.SAFETY_SYSTEM_PROMPT. system_prompt gives your own text instead.
    """

    name: str = "default"
    chat_template: Bool = True
    system: SystemPreset | None = None
    system_prompt: str | None = None

    @model_validator(mode="after")
    def _one_system(self) -> FormatSpec:
        if self.system is not None and self.system_prompt is not None:
            raise ValueError("give either system (a preset) or system_prompt (your text), not both")
        return self


class JudgeSpec(Strict):
    name: str
    args: dict[str, Any] = {}
    params: Float | None = Field(default=None, gt=0)  # its model's billions (cost estimate)


class EstimateSpec(Strict):
    """The throughput model of --dry-run's GPU-hour estimate (capsafe.cost, docs/cost.md):
    tokens per second one GPU processes for a model of one billion parameters; a model of N
    billion runs at rate / N. The defaults assume an H100 SXM (989 TFLOP/s dense bf16, 3.35
    TB/s): training a LoRA costs ~4 FLOPs per parameter per token at 30% utilisation,
    prefill 2 at 40%; generation is bound by reading the weights (2 bytes per parameter per
    decoding step) at 60% of bandwidth, shared by a batch of ~32 sequences. Check them with
    the measured times `capsafe run` prints beside the estimate, and set your own."""

    train: Float = Field(default=74_000.0, gt=0)
    prefill: Float = Field(default=198_000.0, gt=0)
    decode: Float = Field(default=32_000.0, gt=0)


class GenerationSpec(Strict):
    backend: str = "transformers"
    batch_size: Int = Field(default=32, gt=0)
    device: str = "auto"
    args: dict[str, Any] = {}


class UnitResources(Strict):
    """What one unit of a step asks of a Ray cluster (unset: 1 CPU, and 1 GPU where the
    cluster has GPUs and generation.device is not cpu)."""

    num_cpus: Float | None = Field(default=None, ge=0)
    num_gpus: Float | None = Field(default=None, ge=0)


class StepResources(Strict):
    finetune: UnitResources = UnitResources()  # a fine-tuning run (a Ray task)
    generate: UnitResources = UnitResources()  # a generation worker (an actor, one base)
    judge: UnitResources = UnitResources()  # a worker of a judge with a model (an actor)
    cpu: UnitResources = UnitResources()  # a CPU-only judge's worker or a scoring task


class ExecutionSpec(Strict):
    """Where the plan runs: in this process, or on a Ray cluster (see docs/execution.md).
    Not part of any key: the same plan gives the same store either way."""

    engine: Literal["inprocess", "ray"] = "inprocess"
    # local: start a cluster in this process; auto: join the one `ray start` made on this
    # machine (or $RAY_ADDRESS); ray://host:port: a remote cluster through Ray Client.
    address: str = "local"
    num_cpus: Int | None = Field(default=None, gt=0)  # a local cluster's size (default: all)
    num_gpus: Int | None = Field(default=None, ge=0)
    resources: StepResources = StepResources()
    # Workers per generation base / per judge (default: as many as the resources allow, at
    # most one per model, or per batch, waiting).
    workers: Int | None = Field(default=None, gt=0)
    # How often a unit is run again after its worker died or it raised, before the run fails.
    max_retries: Int = Field(default=2, ge=0)
    runtime_env: dict[str, Any] = {}  # passed to ray.init (env_vars, pip, ...)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value in ("local", "auto") or value.startswith("ray://") or ":" in value:
            return value
        raise ValueError(
            f"{value!r} is no Ray address: give local, auto, ray://host:port or host:port"
        )


class CapabilityTarget(Strict):
    """The capability each run is matched at: an absolute accuracy, or a fraction of the best
    run's gain over its base (0.8: base + 0.8 * (best - base))."""

    accuracy: Float | None = Field(default=None, ge=0, le=1)
    gain_fraction: Float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> CapabilityTarget:
        if (self.accuracy is None) == (self.gain_fraction is None):
            raise ValueError(
                "give exactly one of accuracy, gain_fraction (to switch, give the whole "
                "mapping, e.g. capability_target={accuracy: 0.5})"
            )
        return self


class ReportSpec(Strict):
    """What the report computes; `capsafe report DIR report.KEY=VALUE` overrides it later."""

    examples_per_checkpoint: Int = Field(default=5, ge=0)
    capability_target: CapabilityTarget = CapabilityTarget(gain_fraction=0.8)
    # The scored benchmark to anchor on; default: the first, alphabetically.
    capability_benchmark: str | None = None
    # The format capability is read under, where several were tested; default: the
    # experiment's first format (the one stop_at_target evaluates under).
    capability_format: str | None = None
    # The change in the harmful-compliance rate the power analysis plans to detect.
    power_change: Float = Field(default=0.1, gt=0, lt=1)
    # Responses the report's explorer holds, at most: an even share per checkpoint x
    # benchmark, judge disagreements and incoherent ones first (capsafe.report.sample);
    # `capsafe view DIR` shows every one. 2000 keep a paper-scale report a few MB.
    explorer_sample: Int = Field(default=2000, ge=0)


class AdapterSpec(Strict):
    """An already fine-tuned PEFT adapter to evaluate beside its base (`capsafe evaluate`).

    Adapters that share a `run` label are the checkpoints of one run, ordered by `epoch`, so
    the epoch-by-epoch analyses read them like a run capsafe trained; without one, each is
    a run of one checkpoint."""

    name: str
    path: str  # local folder or hub id; with a served backend, the served model's name
    base: str | None = None  # a base_models name; default: the only base model
    revision: str | None = None
    run: str | None = None
    epoch: Int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _run_and_epoch(self) -> AdapterSpec:
        if (self.run is None) != (self.epoch is None):
            raise ValueError("give both run and epoch (a checkpoint of a run), or neither")
        return self


class ExperimentConfig(Strict):
    """An experiment. With `finetune: null` nothing is trained: the base models and the
    listed `adapters` are evaluated side by side (what `capsafe evaluate` writes)."""

    name: str
    output_dir: Path | None = None  # default: runs/<name> beside the config file
    organism: OrganismSpec = OrganismSpec()
    base_models: list[ModelSpec]
    adapters: list[AdapterSpec] = []
    task: TaskSpec | None = None
    finetune: FinetuneSpec | None = FinetuneSpec()
    safety: list[PromptSetSpec]
    formats: list[FormatSpec] = [FormatSpec()]
    decoding: DecodingSpec = DecodingSpec()
    judges: list[JudgeSpec] = [JudgeSpec(name="keyword_refusal")]
    generation: GenerationSpec = GenerationSpec()
    report: ReportSpec = ReportSpec()
    estimate: EstimateSpec = EstimateSpec()
    execution: ExecutionSpec = ExecutionSpec()

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        # The name is the default output folder's (runs/<name>): one plain folder name.
        if not _NAME.fullmatch(name):
            raise ValueError(
                "must be a plain folder name (letters, digits, '.', '_', '-', not starting "
                "with '.'), not a path; set output_dir to write elsewhere"
            )
        return name

    @field_validator("base_models", "formats", "judges")
    @classmethod
    def _non_empty_unique(cls, items: list[Any]) -> list[Any]:
        if not items:
            raise ValueError("must list at least one entry")
        return _unique_names(items)

    @field_validator("safety")
    @classmethod
    def _distinct_sets(cls, items: list[PromptSetSpec]) -> list[PromptSetSpec]:
        # A set's results are stored under its source: its name, or for a custom set its
        # set_name, so two custom sets with their own set_name are two benchmarks.
        if not items:
            raise ValueError("must list at least one entry")
        names = [str(s.args.get("set_name", s.name)) for s in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"prompt sets must be distinct; repeated: {dupes} (two custom sets need "
                "their own args.set_name)"
            )
        return items

    @field_validator("adapters")
    @classmethod
    def _unique_adapters(cls, items: list[Any]) -> list[Any]:
        return _unique_names(items)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        if self.finetune is not None and self.task is None:
            raise ValueError("task: fine-tuning needs a capability task to train on")
        bases = [b.name for b in self.base_models]
        for a in self.adapters:
            if a.base is None and len(bases) > 1:
                raise ValueError(f"adapters: {a.name!r} must name its base (one of {bases})")
            if a.base is not None and a.base not in bases:
                raise ValueError(f"adapters: {a.name!r} names base {a.base!r}; known: {bases}")
        checkpoints = [(self.adapter_base(a), a.run, a.epoch) for a in self.adapters if a.run]
        if dupes := sorted({c for c in checkpoints if checkpoints.count(c) > 1}):
            raise ValueError(f"adapters: two adapters are epoch {dupes[0][2]} of run "
                             f"{dupes[0][1]!r} on base {dupes[0][0]!r}")  # fmt: skip
        if self.served:
            self._check_served()
        entries = [(f"safety.{i}", s) for i, s in enumerate(self.safety)]
        for where, entry in entries + [("task", self.task)]:
            if entry is not None and entry.decoding is not None:
                try:  # the set's registered default is added at load; it sets no seeds
                    resolve_decoding(self.decoding, {}, entry.decoding)
                except ValueError as e:
                    raise ValueError(f"{where}.decoding: {e}") from None
        if self.finetune is not None:
            self._check_training_formats(self.finetune)
            for i, recipe in enumerate(self.finetune.recipes):
                rounds = self.finetune.recipe_rounds(recipe)
                if rounds is not None and len(self.finetune.grid.epochs) > 1:
                    raise ValueError(
                        f"finetune.recipes.{i}: rounds set the epochs of {recipe.level!r}, so "
                        "finetune.grid.epochs may list one value only"
                    )
        return self

    def _check_training_formats(self, ft: FinetuneSpec) -> None:
        named = [("finetune.format", ft.format)] + [
            (f"finetune.recipes.{i}.args.train_format", r.args.get("train_format"))
            for i, r in enumerate(ft.recipes)
            if r.name == "ptst"
        ]
        for where, given in named:
            if given is None:
                continue
            fmt = self._format(given, where)
            if not fmt.chat_template:
                raise ValueError(
                    f"{where}: {fmt.name!r} has chat_template: false; capsafe fine-tunes "
                    "on chat conversations, so the training format must use the chat template"
                )

    def _format(self, given: Any, where: str) -> FormatSpec:
        """A training format: the name of one of `formats`, or a format written out in place
        (a ptst recipe may train in a format the experiment never tests in)."""
        formats = {f.name: f for f in self.formats}
        if isinstance(given, dict):
            try:
                return FormatSpec.model_validate(given)
            except ValidationError as e:
                raise ValueError(f"{where}: not a format: {e.errors()[0]['msg']}") from None
        if given not in formats:
            raise ValueError(
                f"{where}: {given!r} is not one of the formats {sorted(formats)} (or write the "
                "format out, e.g. {name: plain, system: none})"
            )
        return formats[given]

    def training_format(self, recipe: RecipeSpec | None = None) -> FormatSpec | None:
        """The format fine-tuning lays conversations out in (None: user turn only): a ptst
        recipe's train_format, else finetune.format (every recipe's training format)."""
        if self.finetune is None:
            return None
        given: Any = self.finetune.format
        where = "finetune.format"
        if recipe is not None and recipe.name == "ptst":
            given, where = recipe.args.get("train_format"), "ptst train_format"
        return None if given is None else self._format(given, where)

    @property
    def served(self) -> bool:
        """Whether the models are served (generation.backend: openai): base model and adapter
        paths are then served model names, identified by name and revision."""
        return self.generation.backend in SERVED_BACKENDS

    def _check_served(self) -> None:
        backend = self.generation.backend
        if self.finetune is not None:
            raise ValueError(
                f"generation.backend {backend!r} evaluates served models and trains nothing: "
                "set finetune: null and list the served checkpoints as adapters"
            )
        named = [(f"base_models.{i}", m) for i, m in enumerate(self.base_models)] + [
            (f"adapters.{i}", a) for i, a in enumerate(self.adapters)
        ]
        for where, m in named:
            if m.path == BUILTIN_ORGANISM:
                raise ValueError(f"{where}.path: with generation.backend {backend!r} a path is "
                                 "the served model's name, not builtin:organism")  # fmt: skip
            if not m.revision:
                raise ValueError(
                    f"{where}.revision: a served model ({m.path!r}) has no weights capsafe can "
                    "hash, so it is identified by its served name and a revision you give: "
                    "set revision (any string that changes when the served weights change)"
                )

    def adapter_base(self, adapter: AdapterSpec) -> str:
        return adapter.base or self.base_models[0].name

    def uses_organism(self) -> bool:
        return any(m.path == BUILTIN_ORGANISM for m in self.base_models)


_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _unique_names(items: list[Any]) -> list[Any]:
    names = [i.name for i in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"names must be unique; repeated: {dupes}")
    return items


class ConfigError(UserError):
    """A config that cannot be used; the message names the file and every bad field."""


class _Loader(yaml.SafeLoader):
    """YAML as a config needs it: a key given twice in one mapping is an error (PyYAML keeps
    the last silently), and `1e-3` is a number, as in YAML 1.2 (PyYAML's YAML 1.1 reads a
    float without a dot as a string)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (first on line {seen[key] + 1}); "
                    "the second would silently replace the first",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """Parse config YAML (duplicate keys refused, `1e-3` a float); raises yaml.YAMLError."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _format_validation_error(source: str, err: ValidationError) -> str:
    """One line for one problem ("file: field: what"), else a line per problem."""
    lines = [f"{source}: invalid experiment config ({err.error_count()} problem(s)):"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {path}: unknown key (check the spelling; see docs/config.md)")
        else:
            got = e.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
            lines.append(f"  {path}: {e['msg']}{shown}")
    if len(lines) == 2:
        return f"{source}: invalid experiment config: {lines[1].strip()}"
    return "\n".join(lines)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted `key=value` overrides on a raw config mapping (a copy is returned).

    Values are parsed as YAML, so `lr=[1e-3,2e-3]` gives a list and `x=null` gives None.
    List items are addressed by index: `safety.0.limit=10`.
    """
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(data)) or {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node: Any = out
        for depth, key in enumerate(keys[:-1]):
            where = ".".join(keys[: depth + 1])
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise ConfigError(f"override {item!r}: {where} is not an index of the list")
                node = node[int(key)]
            else:
                node = node.setdefault(key, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"override {item!r}: {where} is not a mapping or list")
        last = keys[-1]
        try:
            value = read_yaml(raw)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override {item!r}: the value is not valid YAML: {getattr(err, 'problem', err)}"
            ) from None
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError(f"override {item!r}: {last} is not an index of the list")
            node[int(last)] = value
        else:
            node[last] = value
    return out


def parse_config(data: Any, source: str = "<config>") -> ExperimentConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of keys, got {type(data).__name__}"
        )
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(source, err)) from None


def load_config(path: Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read, override and validate an experiment file; relative paths become relative to it."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; give the experiment's YAML file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = read_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{path}:{where}: not valid YAML: {getattr(err, 'problem', err)}"
        ) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if overrides:
        data = apply_overrides(data or {}, overrides)
    cfg = parse_config(data, str(path))
    return resolve_paths(cfg, path.parent)


def resolve_paths(cfg: ExperimentConfig, base: Path) -> ExperimentConfig:
    """Make relative paths relative to the config file's folder, and fill output_dir."""

    def rel(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else (base / p)

    output_dir = cfg.output_dir if cfg.output_dir and cfg.output_dir.is_absolute() else None
    output_dir = output_dir or base / (cfg.output_dir or Path("runs") / cfg.name)

    def local(m: Any) -> Any:  # a model path that names a folder here, made absolute
        # A served model's path is the name the server knows it by, never rewritten.
        if cfg.served or m.path == BUILTIN_ORGANISM or not (base / m.path).exists():
            return m
        return m.model_copy(update={"path": str((base / m.path).resolve())})

    return cfg.model_copy(
        update={
            "output_dir": output_dir.resolve(),
            "organism": cfg.organism.model_copy(
                update={"dir": (rel(cfg.organism.dir) or cfg.organism.dir).resolve()}
            ),
            "base_models": [local(m) for m in cfg.base_models],
            "task": cfg.task
            and cfg.task.model_copy(update={"path": rel(cfg.task.path) or cfg.task.path}),
            "adapters": [local(a) for a in cfg.adapters],
            "safety": [s.model_copy(update={"path": rel(s.path) or s.path}) for s in cfg.safety],
        }
    )


def report_spec(
    saved: Mapping[str, Any] | None, overrides: list[str] | None = None
) -> tuple[ReportSpec, str | None]:
    """The report settings of a saved experiment config, with `report.KEY=VALUE` overrides.

    Returns the spec and a note when the saved settings could not be read (a store written by
    an older capsafe): the defaults are used then, and the report says so. A bad override is a
    ConfigError.
    """
    overrides = overrides or []
    for item in overrides:
        if not item.startswith("report."):
            raise ConfigError(
                f"override {item!r}: a report can only change report.* settings "
                "(e.g. report.capability_target={accuracy: 0.5}); rerun for anything else"
            )
    raw = (saved or {}).get("report") or {}
    note = None
    try:
        saved_spec = ReportSpec.model_validate(raw)
    except ValidationError as e:
        note = _format_validation_error("saved report settings", e) + "\n(defaults used)"
        saved_spec = ReportSpec()
    formats = (saved or {}).get("formats") or []
    if saved_spec.capability_format is None and formats and isinstance(formats[0], dict):
        first = formats[0].get("name")
        saved_spec = saved_spec.model_copy(update={"capability_format": first})
    if not overrides:
        return saved_spec, note
    data = apply_overrides({"report": saved_spec.model_dump()}, overrides)
    try:
        return ReportSpec.model_validate(data["report"]), note
    except ValidationError as e:
        raise ConfigError(_format_validation_error("report overrides", e)) from None
