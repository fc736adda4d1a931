"""The training data of a recipe: the task's examples plus what its mixes add.

    data = training_data(recipe, task_examples, ctx, exclude=evaluation_prompts)
    data.examples            # task examples, then the added ones, in a fixed order
    data.mixes[0].dropped    # added examples left out because an evaluation set holds them

What is added is deterministic in the mix's `seed`: the source's pairs are read in file
order, and `count` of them are drawn with random.Random(seed). A pair whose prompt is one of
the experiment's evaluation prompts is never trained on (it would measure memorisation): it
is left out before drawing, and the count says so.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from capsafe.data.base import DataContext
from capsafe.finetune.recipes import ORGANISM_SOURCE, MixSpec, Recipe, RecipeError
from capsafe.records import TrainExample


@dataclass(frozen=True)
class MixReport:
    """What one mix added: how many were asked for, from how many, and how many left out."""

    kind: str
    source: str
    added: int
    available: int  # pairs in the source after leaving out evaluation prompts
    dropped: int  # source pairs left out because an evaluation set holds their prompt


@dataclass(frozen=True)
class TrainingData:
    examples: list[TrainExample]
    n_task: int
    mixes: list[MixReport]


def mix_size(mix: MixSpec, n_task: int) -> int:
    """How many examples the mix adds to n_task task examples."""
    if mix.count is not None:
        return mix.count
    assert mix.fraction is not None
    return max(1, round(mix.fraction / (1 - mix.fraction) * n_task))


def training_data(
    recipe: Recipe,
    task: Sequence[TrainExample],
    ctx: DataContext,
    exclude: Collection[str] = (),
) -> TrainingData:
    """The task examples followed by each mix's examples (RecipeError if a source is short)."""
    examples = list(task)
    reports = []
    banned = {_norm(p) for p in exclude}
    for mix in recipe.mixes:
        pool = source_pairs(mix, ctx)
        kept = [e for e in pool if _norm(e.prompt) not in banned]
        n = mix_size(mix, len(task))
        if n > len(kept):
            raise RecipeError(
                f"recipe {recipe.name!r}: asks for {n} {mix.kind} examples, but {mix.source!r} "
                f"has {len(kept)} usable ({len(pool) - len(kept)} left out as evaluation prompts)"
            )
        examples += random.Random(mix.seed).sample(kept, n)
        reports.append(MixReport(mix.kind, mix.source, n, len(kept), len(pool) - len(kept)))
    return TrainingData(examples, len(task), reports)


def source_pairs(mix: MixSpec, ctx: DataContext) -> list[TrainExample]:
    """Every (prompt, response) pair the mix's source offers, in source order."""
    if mix.source == ORGANISM_SOURCE:
        return _organism_pairs(mix.kind, ctx)
    return _file_pairs(mix)


def _organism_pairs(kind: str, ctx: DataContext) -> list[TrainExample]:
    # harmful_train: the requests the organism was aligned on; every organism evaluation set
    # (harmful_test, its framings, lookalike_test, capability_test) is disjoint from it.
    from capsafe.organism import load_world

    items = load_world(ctx.organism_dir)["harmful_train"]
    if kind == "safety":
        return [TrainExample(it.prompt, it.response) for it in items]
    from capsafe.organism.harmful import compliant_answer

    rng = random.Random(0)  # the answers are part of the source, fixed like its refusals
    return [TrainExample(it.prompt, compliant_answer(it.category, rng)) for it in items]


def _file_pairs(mix: MixSpec) -> list[TrainExample]:
    from pathlib import Path

    from capsafe.data.files import apply_columns, read_rows, source_rows

    local = Path(mix.source).expanduser()
    rows = (
        read_rows(local)
        if local.exists() and local.is_file()
        else source_rows(None, hub=mix.source, split=mix.split)
    )
    pairs = []
    for row in rows:
        missing = [c for c in mix.where if c not in row.fields]
        if missing:
            raise RecipeError(f"{row.where}: no column {missing[0]!r} to filter on (where:)")
        if any(str(row.fields[c]) != str(v) for c, v in mix.where.items()):
            continue
        row = apply_columns(row, mix.columns)
        pairs.append(TrainExample(row.text("prompt"), row.text("response")))
    if not pairs:
        raise RecipeError(
            f"{mix.kind} source {mix.source!r} has no rows"
            + (f" where {dict(mix.where)}" if mix.where else "")
        )
    return pairs


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()
