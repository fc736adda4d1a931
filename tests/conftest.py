"""Shared fixtures: one organism build for the whole test session.

The organism is built into <repo>/.capsafe/organism (the quick start's folder, so the
two share it) unless CAPSAFE_TEST_ORGANISM names another folder; a complete build there
is reused across sessions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# The real benchmark files, read in place (never copied into the repository).
SHARED_DATASETS = Path(
    os.environ.get("CAPSAFE_SHARED_DATASETS", REPO.parent / "shared" / "datasets")
)


# The judge models' own chat templates and tokenizers, read in place (see its README.md and
# each folder's PROVENANCE.md for what is genuine).
SHARED_JUDGE_TOKENIZERS = Path(
    os.environ.get("CAPSAFE_SHARED_JUDGE_TOKENIZERS", REPO.parent / "shared" / "judge_tokenizers")
)


@pytest.fixture(scope="session")
def judge_tokenizers() -> Path:
    """SHARED_JUDGE_TOKENIZERS, or a skip saying where they were looked for."""
    if not SHARED_JUDGE_TOKENIZERS.is_dir():
        pytest.skip(
            f"judge tokenizers not found at {SHARED_JUDGE_TOKENIZERS} "
            "(set CAPSAFE_SHARED_JUDGE_TOKENIZERS)"
        )
    return SHARED_JUDGE_TOKENIZERS


@pytest.fixture(scope="session")
def shared() -> Path:
    """SHARED_DATASETS, or a skip saying where they were looked for."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS} (set CAPSAFE_SHARED_DATASETS)")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def organism_dir() -> Path:
    from capsafe.organism import ensure_organism

    path = Path(os.environ.get("CAPSAFE_TEST_ORGANISM", REPO / ".capsafe" / "organism"))
    return ensure_organism(path, seed=0, progress=False)


def write_small_config(
    folder: Path, organism_dir: Path, name: str = "small", **overrides: Any
) -> Path:
    """A small organism experiment YAML in `folder` (output in folder/name); keyword args
    replace top-level keys."""
    data: dict[str, Any] = {
        "name": name,
        "output_dir": str(folder / name),
        "organism": {"dir": str(organism_dir), "seed": 0},
        "base_models": [{"name": "organism", "path": "builtin:organism"}],
        "task": {"name": "organism_arithmetic", "train_limit": 160, "test_limit": 12},
        "finetune": {
            "grid": {"learning_rate": [3e-3], "rank": [4], "alpha": [8], "epochs": [2]},
            "seeds": [0],
            "batch_size": 16,
        },
        "safety": [
            {"name": "organism/harmful", "limit": 12},
            {"name": "organism/lookalike", "limit": 8},
        ],
        "decoding": {"max_new_tokens": 24},
        "judges": [{"name": "keyword_refusal"}],
        "generation": {"batch_size": 8},
    }
    data.update(overrides)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def normalised_dump(out_dir: Path) -> dict:
    """The store in out_dir as Store.dump gives it, paths under out_dir written <OUT>."""
    from capsafe.pipeline import STORE_FILE
    from capsafe.store import Store

    with Store(out_dir / STORE_FILE) as store:
        return store.dump(out_dir)


@pytest.fixture()
def small_config(tmp_path: Path, organism_dir: Path) -> Callable[..., Path]:
    """write_small_config into this test's tmp_path."""

    def make(name: str = "small", **overrides: Any) -> Path:
        return write_small_config(tmp_path, organism_dir, name, **overrides)

    return make
