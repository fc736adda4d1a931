"""The responses the report's explorer holds: a bounded sample, stratified by checkpoint and
benchmark, flagged responses first. `capsafe view DIR` pages through all of them.

A paper-scale store holds about a million responses, far more than one HTML file can carry,
so the report keeps at most `report.explorer_sample` of them:

- the budget is split evenly over the strata (one model on one prompt set); a stratum with
  fewer responses than its share gives what is left to the others;
- within a stratum, responses whose judges disagree and are incoherent come first, then
  those with either flag (capsafe.report.flags: the explorer's own definitions), then the
  rest, each group in the order of a hash of (prompt set, prompt id, sample seed, format),
  so every checkpoint shows the same unflagged prompts and one can follow a prompt through
  the epochs.

Nothing depends on the order rows were stored in: the same store gives the same sample.

    sample = explorer_sample(rows, 2000)
    sample.generations, sample.stored      # what the report shows, of how many
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from capsafe.analysis.rows import ExperimentRows
from capsafe.report.flags import Flags, flags_by_generation
from capsafe.store import GenerationRow

K = TypeVar("K")


@dataclass(frozen=True)
class Sample:
    generations: list[GenerationRow]  # in store order (by key)
    stored: int  # responses in the store


def explorer_sample(rows: ExperimentRows, size: int) -> Sample:
    """At most `size` of the rows' generations, as the module docstring says."""
    flags = flags_by_generation(rows)
    strata: dict[tuple[str, str], list[GenerationRow]] = defaultdict(list)
    for g in rows.generations:
        strata[(g.model_key, g.prompt_set)].append(g)
    quotas = split_evenly({k: len(gens) for k, gens in strata.items()}, size)
    chosen: list[GenerationRow] = []
    for key, gens in strata.items():
        chosen += sorted(gens, key=lambda g: _priority(g, flags[g.key]))[: quotas[key]]
    return Sample(sorted(chosen, key=lambda g: g.key), len(rows.generations))


def split_evenly(sizes: Mapping[K, int], budget: int) -> dict[K, int]:
    """A share of `budget` for each stratum, as even as the strata's sizes allow: the
    smallest are served first and what they cannot take goes to the rest. The shares sum to
    min(budget, total size); where the budget is smaller than the number of strata, the
    smallest strata (by size, then key) get none."""
    order = sorted(sizes, key=lambda k: (sizes[k], str(k)))
    out: dict[K, int] = {}
    left = budget
    for i, key in enumerate(order):
        out[key] = min(sizes[key], left // (len(order) - i))
        left -= out[key]
    return out


def _priority(g: GenerationRow, f: Flags) -> tuple[int, str, str]:
    flagged = int(f.disagree) + int(f.incoherent is True)
    seed = f"{g.prompt_set}\0{g.prompt_id}\0{g.sample_seed}\0{g.format}"
    return (-flagged, hashlib.sha256(seed.encode()).hexdigest(), g.key)
