"""The judge interface. A judge reads (prompt, response) items and returns Judgments.

Each judge declares the dimensions it measures (a subset of harmful, refusal, coherent,
relevant) and carries a name and a version; both are part of every judgment's store key,
so changing a judge's behaviour means bumping its version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
