"""Everything the analysis reads, as typed rows loaded from the store in one go."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capsafe.store import (
    CheckpointRow,
    FailureRow,
    GenerationRow,
    JudgmentRow,
    ModelRow,
    RequestFailureRow,
    RunRow,
    ScoreRow,
    Store,
)


@dataclass(frozen=True)
class ExperimentRows:
    models: list[ModelRow]
    runs: list[RunRow]
    checkpoints: list[CheckpointRow]
    generations: list[GenerationRow]
    judgments: list[JudgmentRow]
    scores: list[ScoreRow]
    failures: list[FailureRow] = field(default_factory=list)  # runs whose training diverged
    # Requests a served model never answered: in no number, retried on the next run.
    request_failures: list[RequestFailureRow] = field(default_factory=list)
    # Results derived from these rows alone (e.g. analysis.labels.cell_labels), computed once
    # however many analyses ask; not an init field, so dataclasses.replace starts it empty.
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_store(cls, store: Store) -> ExperimentRows:
        return cls(
            models=store.models(),
            runs=store.runs(),
            checkpoints=store.checkpoints(),
            generations=store.generations(),
            judgments=store.judgments(),
            scores=store.scores(),
            failures=store.failures(),
            request_failures=store.request_failures(),
        )

    def base_versions(self) -> dict[str, set[str]]:
        """Per base name, the content keys stored under it (several: a rebuilt or updated
        model whose results share one store)."""
        keys: dict[str, set[str]] = {}
        for m in self.models:
            keys.setdefault(m.base_name, set()).add(m.base_key)
        for r in self.runs:
            keys.setdefault(r.base_name, set()).add(r.base_key)
        return keys

    def base_names(self) -> dict[str, str]:
        """Per base key, the name to show: the base's name, or where one name has several
        versions, the name with the start of its content key, so their results are never
        pooled or compared as one."""
        return {
            key: name if len(found) == 1 else f"{name}@{key[:8]}"
            for name, found in self.base_versions().items()
            for key in found
        }
