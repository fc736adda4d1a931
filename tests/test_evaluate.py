"""`capsafe evaluate`, prompt formats as a factor, PTST training formats and multiple-choice
scoring by log-likelihood, end to end on the organism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from capsafe.cli import main
from capsafe.config import load_config
from capsafe.data.base import TASKS, register_task
from capsafe.pipeline import STORE_FILE, load_inputs, run_experiment
from capsafe.plan import plan_runs
from capsafe.records import PromptRecord, Score
from capsafe.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, organism_dir):
    """A small run with two formats; its epoch-1 adapter is what evaluate gets."""
    from tests.conftest import write_small_config

    folder = tmp_path_factory.mktemp("trained")
    formats = [{"name": "plain"}, {"name": "guarded", "system": "safety"}]
    path = write_small_config(
        folder,
        organism_dir,
        "two",
        formats=formats,
        finetune={
            "grid": {"learning_rate": [3e-3], "rank": [4], "alpha": [8], "epochs": [1]},
            "seeds": [0],
            "format": "plain",
        },
    )
    outcome = run_experiment(load_config(path), progress=False)
    with Store(folder / "two" / STORE_FILE) as store:
        adapter = store.checkpoints()[0].adapter_dir
        gens = store.generations()
    return folder, outcome, adapter, gens


def test_each_format_is_a_factor_level(trained):
    _, outcome, _, gens = trained
    formats = {g.format for g in gens}
    assert formats == {"plain", "guarded"}
    guarded = next(g for g in gens if g.format == "guarded")
    assert json.loads(guarded.format_spec)["system"] == "safety"
    # Same prompts under both formats: 2 models x 2 formats x (12 + 12 + 8) prompts.
    assert outcome.generated == 2 * 2 * 32


def test_training_format_changes_the_run_identity(tmp_path, organism_dir, small_config):
    formats = [{"name": "plain"}, {"name": "guarded", "system": "safety"}]
    ids = []
    for fmt in ("plain", "guarded"):
        cfg = load_config(small_config(formats=formats, finetune={"format": fmt}))
        recipes = load_inputs(cfg, progress=False).recipes
        ids.append(plan_runs(cfg, "organism", "k", recipes)[0].run_id)
    assert ids[0] != ids[1]


def test_evaluate_cli_measures_base_and_adapter_side_by_side(trained, tmp_path, organism_dir):
    _, _, adapter, _ = trained
    out = tmp_path / "ev"
    code = main(
        [
            "evaluate", "--base", "builtin:organism", "--adapter", f"tuned={adapter}",
            "--benchmark", "organism/harmful", "--benchmark", "organism/lookalike",
            "--task", "organism_arithmetic", "--limit", "6", "--max-new-tokens", "16",
            "--organism-dir", str(organism_dir), "-o", str(out), "-q",
        ]
    )  # fmt: skip
    assert code == 0
    with Store(out / STORE_FILE) as store:
        models = store.models()
        assert len(models) == 2 and {m.adapter_dir for m in models} == {None, adapter}
        assert len(store.generations()) == 2 * 3 * 6  # 2 models x (task + 2 sets) x 6
        assert store.count("judgments") == 2 * 12 and store.count("scores") == 2 * 6
        assert json.loads(store.runs()[0].hparams) == {"adapter": "tuned"}
    assert (out / "report.html").is_file()
    # The same evaluation as a YAML experiment (finetune: null) reuses everything stored.
    yaml_path = tmp_path / "ev.yaml"
    yaml_path.write_text(
        json.dumps(
            {
                "name": "ev",
                "output_dir": str(out),
                "organism": {"dir": str(organism_dir)},
                "base_models": [{"name": "base", "path": "builtin:organism"}],
                "adapters": [{"name": "tuned", "path": adapter}],
                "finetune": None,
                "task": {"name": "organism_arithmetic", "test_limit": 6},
                "safety": [
                    {"name": "organism/harmful", "limit": 6},
                    {"name": "organism/lookalike", "limit": 6},
                ],
                "decoding": {"max_new_tokens": 16},
                "generation": {"batch_size": 32},
            }
        )
    )
    again = run_experiment(load_config(yaml_path), progress=False, report=False)
    assert (again.generated, again.judged, again.scored) == (0, 0, 0)
    assert main(["evaluate", str(yaml_path), "-q", "--no-report"]) == 0


def test_evaluate_errors_are_clear(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output folder is runs/evaluate under the cwd
    assert main(["evaluate", "-q"]) == 2
    assert "needs --base" in capsys.readouterr().err
    assert main(["evaluate", "--base", "builtin:organism", "--adapter", str(tmp_path)]) == 2
    assert "adapter_config.json" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # a failed evaluate leaves no empty folder
    kept = tmp_path / "kept"
    kept.mkdir()
    assert main(["evaluate", "--base", str(tmp_path / "none"), "-o", str(kept), "-q"]) == 2
    assert kept.is_dir()  # a folder the user made stays


class ParityTask:
    """A two-option test task scored by log-likelihood: is the number even or odd?"""

    name = "test_parity"
    version = "1"
    scoring = "loglik"

    def train_examples(self):
        raise ValueError("no train split")

    def test_prompts(self):
        return [
            PromptRecord(f"p{n}", f"Is {n} even or odd?", "test/parity", "task", None, str(n % 2))
            for n in range(5)
        ]

    def choices(self, record):
        return [" even", " odd"]

    def score_choices(self, logliks, record):
        best = max(range(2), key=lambda i: logliks[i].logprob)
        total = math.exp(logliks[0].logprob) + math.exp(logliks[1].logprob)
        gold = int(record.reference)
        return Score(best == gold, str(best), math.exp(logliks[gold].logprob) / total)

    def score(self, response, record):
        raise AssertionError("a loglik task is never scored from generated text")


if "test_parity" not in TASKS.names():
    register_task("test_parity")(lambda ctx, path=None: ParityTask())


def test_loglik_task_scores_options_without_generating(small_config, tmp_path):
    cfg = load_config(
        small_config(
            finetune=None,
            task={"name": "test_parity"},
            safety=[{"name": "organism/harmful", "limit": 3}],
        )
    )
    outcome = run_experiment(cfg, progress=False, report=False)
    assert outcome.generated == 3 and outcome.scored == 0  # safety prompts only
    with Store(cfg.output_dir / STORE_FILE) as store:
        scores = store.scores()
        choice_rows = [g for g in store.generations() if g.finish_reason == "loglik"]
    assert len(scores) == 5 and len(choice_rows) == 5
    assert {g.response for g in choice_rows} <= {" even", " odd"}
    assert all(0 <= s.value <= 1 for s in scores)
    assert all(s.correct == (s.extracted == str(int(g.prompt_id[1:]) % 2))
               for s, g in zip(sorted(scores, key=lambda s: s.generation_key),
                               sorted(choice_rows, key=lambda g: g.key), strict=True))  # fmt: skip
    again = run_experiment(cfg, progress=False, report=False)
    assert (again.generated, again.scored) == (0, 0)
    with Store(cfg.output_dir / STORE_FILE) as store:
        assert store.count("scores") == 5


def test_stratified_take_keeps_category_shares():
    from capsafe.data.base import take

    recs = [
        PromptRecord(f"{c}{i}", "x", "s", "harmful", c)
        for c, n in (("a", 60), ("b", 30), ("c", 10))
        for i in range(n)
    ]
    got = take(recs, 10, seed=1, stratify=True)
    counts = {c: sum(r.category == c for r in got) for c in "abc"}
    assert counts == {"a": 6, "b": 3, "c": 1}
    small = take(recs, 3, seed=1, stratify=True)
    assert {r.category for r in small} == {"a", "b", "c"}  # one per category first
    assert take(recs, 10, seed=1, stratify=True) == got
    assert take(recs, 10, seed=2, stratify=True) != got
    assert len(take(recs, 2, seed=0, stratify=True)) == 2


def test_store_migrates_schema_1(tmp_path: Path):
    import sqlite3

    with Store(tmp_path / "s.db"):
        pass
    db = sqlite3.connect(tmp_path / "s.db")
    # A schema-1 store had neither the graded score (schema 2) nor judgments.truncated (3)
    # nor the failures table (4) nor the request failures (5).
    db.execute("ALTER TABLE scores DROP COLUMN value")
    db.execute("ALTER TABLE judgments DROP COLUMN truncated")
    db.execute("DROP TABLE failures")
    db.execute("DROP TABLE request_failures")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with Store(tmp_path / "s.db") as store:
        assert store.meta("schema_version") == "5"
        assert store.failures() == [] and store.request_failures() == []
        cols = [r[1] for r in store._db.execute("PRAGMA table_info(scores)")]
        assert "value" in cols
        assert "truncated" in [r[1] for r in store._db.execute("PRAGMA table_info(judgments)")]
