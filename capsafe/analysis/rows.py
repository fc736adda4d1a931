"""Everything the analysis reads, as typed rows loaded from the store in one go."""

from __future__ import annotations

from dataclasses import dataclass

from capsafe.store import (
    CheckpointRow,
    GenerationRow,
    JudgmentRow,
    ModelRow,
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

    @classmethod
    def from_store(cls, store: Store) -> ExperimentRows:
        return cls(
            models=store.models(),
            runs=store.runs(),
            checkpoints=store.checkpoints(),
            generations=store.generations(),
            judgments=store.judgments(),
            scores=store.scores(),
        )
