"""The judge interface. A judge reads (prompt, response) items and returns Judgments.

Each judge declares the dimensions it measures (a subset of harmful, refusal, coherent,
relevant) and carries a name and a version; both are part of every judgment's store key,
so changing a judge's behaviour means bumping its version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from capsafe.records import JudgeItem, Judgment
from capsafe.registry import Registry

DIMENSIONS = frozenset({"harmful", "refusal", "coherent", "relevant"})


class Judge(Protocol):
    name: str
    version: str
    measures: frozenset[str]

    def judge(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        """One Judgment per item, in item order."""
        ...


JUDGES: Registry[Judge] = Registry("judge", "capsafe.judges")
register_judge = JUDGES.register


def judge_model(name: str, args: dict[str, Any]) -> str | None:
    """The model judge `name` loads with `args` (its `model` argument, or its default), or
    None for a judge without one (keywords, embeddings; the coherence judge's perplexity
    model is its `reference_model`, given by the pipeline)."""
    import inspect

    takes = inspect.signature(JUDGES.factory(name)).parameters
    if "model" not in takes:
        return args.get("reference_model")
    model = args.get("model", takes["model"].default)
    return None if model is None else str(model)
