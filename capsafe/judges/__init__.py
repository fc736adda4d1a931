"""Judges. Importing this package registers the built-in ones."""

from capsafe.judges import (  # noqa: F401  (registers)
    coherence,
    embedding,
    embedding_harm,
    granite_guardian,
    harmbench_cls,
    keyword,
    llama_guard,
    llm_judge,
    shieldgemma,
    sorrybench,
    strongreject,
    strongreject_ft,
    wildguard,
)
from capsafe.judges.base import DIMENSIONS, JUDGES, Judge, register_judge

__all__ = ["DIMENSIONS", "JUDGES", "Judge", "register_judge"]
