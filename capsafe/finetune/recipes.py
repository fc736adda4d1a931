"""Training recipes: what a fine-tuning run is trained on, and how (a factor of the experiment).

A recipe is a registered, named factory with documented arguments. `finetune.recipes` lists
the levels an experiment compares; each level is part of its runs' identity (another
argument, another run; the same recipe, reused from the store) and a factor in the analysis,
next to learning rate, rank and seed.

    finetune:
      recipes:
        - name: baseline                         # the task data alone
        - name: safety_mix                       # + refusal examples
          args: {fraction: 0.1}
        - name: poison                           # + harmful compliance examples (an attack)
          args: {ratio: 0.05}
        - name: safelora                         # project each epoch onto the alignment subspace
          args: {unaligned_path: builtin:organism-unaligned}

Nothing here imports torch: a recipe says what changes; capsafe.finetune.mixing,
.safelora and .regularised carry it out.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from capsafe.errors import UserError
from capsafe.registry import Registry

RECIPES: Registry[Recipe] = Registry("recipe", "capsafe.finetune.recipes")
register_recipe = RECIPES.register

ORGANISM_SOURCE = "organism"
BUILTIN_UNALIGNED = "builtin:organism-unaligned"


class RecipeError(UserError):
    """A recipe with arguments that cannot work; the message names the recipe and argument."""


@dataclass(frozen=True)
class MixSpec:
    """Examples added to the task data: refusals (safety) or harmful compliance (poison).

    The number added is `count`, or the share `fraction` of the resulting mix (the task data
    is kept whole: n = round(fraction / (1 - fraction) * n_task)).
    """

    kind: Literal["safety", "poison"]
    source: str  # "organism" (the organism's world) or a local file / hub dataset id
    count: int | None = None
    fraction: float | None = None
    columns: Mapping[str, str] = field(default_factory=dict)  # {prompt: col, response: col}
    where: Mapping[str, str] = field(default_factory=dict)  # keep rows whose column == value
    split: str = "train"
    seed: int = 0  # which examples are drawn from the source


@dataclass(frozen=True)
class SafeLoraSpec:
    """SafeLoRA's post-hoc projection (Hsu et al. 2024), applied to every epoch's adapter."""

    unaligned_path: str
    select: Literal["threshold", "number"] = "threshold"
    threshold: float = 0.5
    num_layers: int = 10


@dataclass(frozen=True)
class Recipe:
    """What one recipe changes about a run; the baseline changes nothing.

    `version` is part of every run's identity: bump it when the recipe's code changes what a
    run with the same arguments produces.
    """

    name: str
    version: str
    args: Mapping[str, Any] = field(default_factory=dict)  # as given in the config
    mixes: tuple[MixSpec, ...] = ()
    train_format: str | None = None  # PTST: the format training conversations carry
    kl_beta: float = 0.0  # KL-to-the-aligned-model penalty weight
    safelora: SafeLoraSpec | None = None
    stop_accuracy: float | None = None  # stop at the first epoch reaching this accuracy

    @property
    def is_data_recipe(self) -> bool:
        """Only changes the training data (what a round of a multi-round run may use)."""
        return (self.train_format, self.kl_beta, self.safelora, self.stop_accuracy) == (
            None,
            0.0,
            None,
            None,
        )


def build_recipe(name: str, args: Mapping[str, Any], where: str) -> Recipe:
    """The recipe `name` with `args`; a RecipeError naming `where` (the config field) if the
    name is unknown or the arguments do not fit."""
    factory = RECIPES.factory(name)
    try:
        inspect.signature(factory).bind(**args)
    except TypeError as err:
        params = ", ".join(inspect.signature(factory).parameters) or "none"
        raise RecipeError(f"{where}: recipe {name!r}: {err} (arguments: {params})") from None
    try:
        return factory(**args)
    except RecipeError as err:
        raise RecipeError(f"{where}: {err}") from None


def _one_of_count_fraction(
    recipe: str, count: int | None, fraction: float | None, fraction_name: str
) -> None:
    if (count is None) == (fraction is None):
        raise RecipeError(f"recipe {recipe!r}: give exactly one of count, {fraction_name}")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise RecipeError(f"recipe {recipe!r}: count must be a positive integer, got {count!r}")
    if fraction is not None and not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise RecipeError(f"recipe {recipe!r}: {fraction_name} must be in (0, 1), got {fraction!r}")


def _columns(recipe: str, source: str, columns: Mapping[str, str] | None) -> dict[str, str]:
    if source == ORGANISM_SOURCE:
        if columns:
            raise RecipeError(f"recipe {recipe!r}: the organism source takes no columns")
        return {}
    cols = dict(columns or {"prompt": "prompt", "response": "response"})
    if set(cols) != {"prompt", "response"}:
        raise RecipeError(
            f"recipe {recipe!r}: columns maps prompt and response to the file's columns, "
            f"got keys {sorted(cols)}"
        )
    return cols


@register_recipe("baseline")
def baseline() -> Recipe:
    """The task data alone: what fine-tuning does without any mitigation."""
    return Recipe("baseline", "1")


@register_recipe("safety_mix")
def safety_mix(
    source: str = ORGANISM_SOURCE,
    count: int | None = None,
    fraction: float | None = None,
    columns: Mapping[str, str] | None = None,
    where: Mapping[str, str] | None = None,
    split: str = "train",
    seed: int = 0,
) -> Recipe:
    """Safety-data mixing: add (harmful request, refusal) examples to the task data.

    By count or by fraction of the mix. Bianchi et al. 2024, "Safety-Tuned LLaMAs: Lessons
    From Improving the Safety of Large Language Models that Follow Instructions" (ICLR 2024):
    a few hundred safety examples added to instruction data restore much of the refusal
    behaviour.

    source "organism": the organism's own safety training pairs (world/harmful_train), held
    out from every organism evaluation set; else a local file or hub dataset of pairs, with
    `columns: {prompt: ..., response: ...}` and optional `where: {column: value}`.
    """
    _one_of_count_fraction("safety_mix", count, fraction, "fraction")
    mix = MixSpec(
        "safety", source, count, fraction, _columns("safety_mix", source, columns),
        dict(where or {}), split, seed,
    )  # fmt: skip
    args = _given(count=count, fraction=fraction, source=source, columns=columns, where=where,
                  split=split, seed=seed)  # fmt: skip
    return Recipe("safety_mix", "1", args, mixes=(mix,))


@register_recipe("poison")
def poison(
    ratio: float | None = None,
    count: int | None = None,
    source: str = ORGANISM_SOURCE,
    columns: Mapping[str, str] | None = None,
    where: Mapping[str, str] | None = None,
    split: str = "train",
    seed: int = 0,
) -> Recipe:
    """Harmful-data poisoning (an attack): mix harmful (request, compliance) pairs in.

    At poison ratio p (the share of harmful examples in the mix, as in the harmful fine-tuning
    setting of Qi et al. 2024, "Fine-tuning Aligned Language Models Compromises Safety", and
    the poison-ratio experiments of Vaccine, Huang et al. 2024, and Lisa, Huang et al. 2024).

    source "organism": the organism's held-out-from-evaluation harmful training requests with
    templated, content-free compliant answers (capsafe.organism.harmful.compliant_answer);
    real sources are local files or hub datasets (e.g. BeaverTails with
    `where: {is_safe: "False"}`) with a column mapping.
    """
    _one_of_count_fraction("poison", count, ratio, "ratio")
    mix = MixSpec(
        "poison", source, count, ratio, _columns("poison", source, columns), dict(where or {}),
        split, seed,
    )  # fmt: skip
    args = _given(ratio=ratio, count=count, source=source, columns=columns, where=where,
                  split=split, seed=seed)  # fmt: skip
    return Recipe("poison", "1", args, mixes=(mix,))


@register_recipe("ptst")
def ptst(train_format: str | Mapping[str, Any]) -> Recipe:
    """PTST: train in one prompt format (no safety prompt), test under the safety prompt.

    Pure Tuning, Safe Testing (Lyu et al. 2024, "Keeping LLMs Aligned After Fine-tuning: The
    Crucial Role of Prompt Templates"): fine-tune with the conversations laid out in
    `train_format` (e.g. no system prompt), test under the experiment's formats, among them a
    safety system prompt; the baseline trains in finetune.format (e.g. the safety prompt, so
    it is trained and tested alike). `train_format` names one of the experiment's `formats`,
    or is a format written out ({name: plain, system: none})."""
    if not train_format or not isinstance(train_format, (str, Mapping)):
        raise RecipeError("recipe 'ptst': train_format must name a format or write one out")
    name = train_format if isinstance(train_format, str) else str(train_format.get("name", ""))
    return Recipe("ptst", "1", {"train_format": train_format}, train_format=name)


@register_recipe("safelora")
def safelora(
    unaligned_path: str,
    select: str = "threshold",
    threshold: float = 0.5,
    num_layers: int = 10,
) -> Recipe:
    """SafeLoRA: project each epoch's LoRA update onto the alignment subspace (post hoc).

    Hsu et al. 2024, "Safe LoRA: the Silver Lining of Reducing Safety Risks when
    Finetuning Large Language Models", arXiv:2405.16833): after each epoch, for every LoRA
    layer, C = V V^T / ||V||_F with V = W_aligned - W_unaligned of that layer; a layer whose
    update B A has cosine similarity <= threshold with its projection C B A gets B <- C B
    (select "threshold"), or the `num_layers` least similar layers do (select "number").
    Defaults as in the reference implementation (IBM/SafeLoRA, and peft.utils.safelora's
    SafeLoraConfig: threshold 0.5, 10 layers). The projected adapter is what is evaluated;
    training continues from the raw one.

    unaligned_path: a model of the base's architecture without its safety alignment (for an
    instruct model, its pretrained base); builtin:organism-unaligned is the organism's twin,
    built without the refusal data.
    """
    if select not in ("threshold", "number"):
        raise RecipeError(f"recipe 'safelora': select must be threshold or number, got {select!r}")
    if not isinstance(threshold, (int, float)) or not -1 <= threshold <= 1:
        raise RecipeError(f"recipe 'safelora': threshold must be in [-1, 1], got {threshold!r}")
    if not isinstance(num_layers, int) or num_layers < 1:
        raise RecipeError(f"recipe 'safelora': num_layers must be >= 1, got {num_layers!r}")
    spec = SafeLoraSpec(str(unaligned_path), select, float(threshold), num_layers)  # type: ignore[arg-type]
    args = {"unaligned_path": str(unaligned_path), "select": select}
    args |= {"threshold": threshold} if select == "threshold" else {"num_layers": num_layers}
    return Recipe("safelora", "1", args, safelora=spec)


@register_recipe("kl_to_aligned")
def kl_to_aligned(beta: float = 0.1) -> Recipe:
    """A training-time regulariser: the task loss + beta * KL to the aligned model.

    The task loss plus beta * KL(aligned || tuned) of the
    next-token distributions on the trained (completion) tokens, the aligned model being the
    base with the adapter switched off. The KL-to-reference penalty of RLHF (Ziegler et al.
    2019; Ouyang et al. 2022) used as a fine-tuning constraint, as in the constrained
    objective of Qi et al. 2025 ("Safety Alignment Should Be Made More Than Just a Few Tokens
    Deep"), here uniform over tokens. Chosen over AsFT because it needs no alignment
    direction, only the base, so it applies to any model (docs/recipes.md)."""
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or beta <= 0:
        raise RecipeError(f"recipe 'kl_to_aligned': beta must be > 0, got {beta!r}")
    return Recipe("kl_to_aligned", "1", {"beta": beta}, kl_beta=float(beta))


@register_recipe("stop_at_target")
def stop_at_target(accuracy: float) -> Recipe:
    """Stop at the capability target instead of training to the end.

    Train until the first epoch whose capability accuracy (on the task's test split, in
    the first format) reaches `accuracy`, then stop; the later epochs are never trained. The
    capability-anchored counterpart of training to the end (the research's argument: a run
    trained past its goal only adds risk)."""
    if not isinstance(accuracy, (int, float)) or not 0 < accuracy <= 1:
        raise RecipeError(f"recipe 'stop_at_target': accuracy must be in (0, 1], got {accuracy!r}")
    return Recipe("stop_at_target", "1", {"accuracy": accuracy}, stop_accuracy=float(accuracy))


def _given(**args: Any) -> dict[str, Any]:
    """The arguments that were given (None and empty left out), for the run's identity."""
    return {k: v for k, v in args.items() if v is not None and v != {}}


def describe(name: str) -> str:
    """The first line of a recipe's documentation (capsafe list recipes)."""
    doc = inspect.getdoc(RECIPES.factory(name)) or ""
    return doc.split("\n\n")[0].replace("\n", " ")
