"""Prompt sets and capability tasks: registries and the shared shapes.

A prompt set factory takes a DataContext, an optional local `path` (which overrides the
set's default source) and its own keyword arguments, and returns PromptRecords. A task
factory takes the same and returns a Task: train examples to fine-tune on, test prompts
with references, and a scoring function.

A task is scored one of two ways, named by its `scoring` attribute:
- "generate": the model writes a response and `score(response, record)` reads it;
- "loglik": a multiple-choice task (a ChoiceTask) whose options are scored by the model's
  log-likelihood: one LoglikRequest(context, choice) per string of `choices(record)`, and
  `score_choices(logliks, record)` picks the argmax. For such tasks the record keeps its
  options as JSON in meta["choices"] and the gold option's index in `reference`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from capsafe.errors import UserError
from capsafe.records import Loglik, PromptRecord, Score, TrainExample
from capsafe.registry import Registry


@dataclass(frozen=True)
class DataContext:
    """What loaders may need beyond their own arguments."""

    organism_dir: Path


Scoring = Literal["generate", "loglik"]


@runtime_checkable
class Task(Protocol):
    name: str
    version: str  # bump when the data or the scoring changes
    scoring: Scoring  # how test prompts are answered: free generation or choice likelihood

    def train_examples(self) -> list[TrainExample]: ...

    def test_prompts(self) -> list[PromptRecord]: ...

    def score(self, response: str, record: PromptRecord) -> Score: ...


@runtime_checkable
class ChoiceTask(Task, Protocol):
    """A multiple-choice task that can be scored by log-likelihood (scoring == "loglik")."""

    def choices(self, record: PromptRecord) -> list[str]:
        """The continuation strings to score after the prompt, one per option, in order."""
        ...

    def score_choices(self, logliks: Sequence[Loglik], record: PromptRecord) -> Score:
        """The score of the option with the highest log-likelihood (one Loglik per choice)."""
        ...


PromptSetFactory = Callable[..., list[PromptRecord]]
PROMPT_SETS: Registry[list[PromptRecord]] = Registry("prompt set", "capsafe.data")
TASKS: Registry[Task] = Registry("capability task", "capsafe.data")
register_prompt_set = PROMPT_SETS.register
register_task = TASKS.register


class EmptySetError(UserError):
    """A prompt set or task split that came out empty (after filtering or limiting)."""


def _rank(seed: int, r: PromptRecord) -> str:
    return hashlib.sha256(f"{seed}\x00{r.id}".encode()).hexdigest()


def take(
    records: Sequence[PromptRecord],
    limit: int | None,
    seed: int = 0,
    stratify: bool = False,
) -> list[PromptRecord]:
    """A stable subset of `limit` records: the same ids are chosen whatever the file order.

    Records are ranked by a hash of (seed, id), so raising the limit keeps every record
    already chosen (earlier generations stay reusable). With `stratify`, each category
    (None counts as one) gets its share of the limit by largest remainder, at least one
    while the limit allows, and its highest-ranked records fill it.
    """
    if limit is None or limit >= len(records):
        return list(records)
    if not stratify:
        chosen = {r.id for r in sorted(records, key=lambda r: _rank(seed, r))[:limit]}
        return [r for r in records if r.id in chosen]
    groups: dict[str | None, list[PromptRecord]] = {}
    for r in records:
        groups.setdefault(r.category, []).append(r)
    quota = _stratum_quota({c: len(g) for c, g in groups.items()}, limit, seed)
    chosen = {
        r.id for c, g in groups.items() for r in sorted(g, key=lambda r: _rank(seed, r))[: quota[c]]
    }
    return [r for r in records if r.id in chosen]


def _stratum_quota(
    sizes: dict[str | None, int], limit: int, seed: int = 0
) -> dict[str | None, int]:
    """Largest-remainder allocation of `limit` over strata in proportion to `sizes`; then
    every empty stratum gets one (taken from the largest quota) while the limit allows.
    Ties go by a seeded hash of the category, not its name, so that with fewer prompts
    than categories alphabetical neighbours (XSTest's contrast_* types) are not favoured."""
    total = sum(sizes.values())
    order = sorted(sizes, key=lambda c: hashlib.sha256(f"{seed}\x00{c}".encode()).hexdigest())
    shares = {c: limit * sizes[c] / total for c in order}
    quota = {c: int(shares[c]) for c in order}
    for c in sorted(order, key=lambda c: -(shares[c] - quota[c]))[: limit - sum(quota.values())]:
        quota[c] += 1
    if limit >= len(order):
        for c in order:
            if quota[c] == 0:
                donor = max(order, key=lambda d: quota[d])
                quota[donor] -= 1
                quota[c] = 1
    return quota


def load_prompt_set(
    name: str,
    ctx: DataContext,
    path: Path | None = None,
    limit: int | None = None,
    *,
    seed: int = 0,
    stratify: bool = False,
    where: str | None = None,
    **args: object,
) -> list[PromptRecord]:
    """The set's records (a stable seeded subset with `limit`). `where` names the config field
    the arguments came from, for the error when the set's factory refuses them."""
    every = list(PROMPT_SETS.create(name, ctx, path=path, where=where, **args))
    seen: dict[str, int] = {}
    for i, r in enumerate(every, 1):
        if r.id in seen:
            where = f" ({path})" if path else ""
            raise ValueError(
                f"prompt set {name!r}{where}: id {r.id!r} is repeated (records {seen[r.id]} "
                f"and {i} of the set, in file order); ids must be unique"
            )
        seen[r.id] = i
    records = take(every, limit, seed, stratify)
    if not records:
        raise EmptySetError(
            f"prompt set {name!r} is empty" + (f" (read from {path})" if path else "")
        )
    return records
