"""Stores for capsafe view's tests: any ExperimentRows written to a store, and a large
synthetic one (100,000 responses) built in seconds with the Store's batch inserts.

    write_rows(Store(tmp / "capsafe.db"), report_rows())
    big_store(tmp / "capsafe.db")        # 10 models x 4 benchmarks x 2,500 prompts
"""

from __future__ import annotations

import json
from pathlib import Path

from capsafe.analysis.rows import ExperimentRows
from capsafe.store import GenerationRow, JudgmentRow, ModelRow, RunRow, Store
from tests.helpers.report_rows import ATTACKS

BIG_BENCHES = (("adv/harmful", "harmful"), ("direct/harmful", "harmful"),
               ("xs/benign", "benign"), ("arith/test", "task"))  # fmt: skip
BIG_PROMPTS = 2_500  # per model and benchmark
BIG_SEEDS = (0, 1, 2)
BIG_EPOCHS = (1, 2, 3)


def write_rows(store: Store, rows: ExperimentRows) -> None:
    for m in rows.models:
        store.put_model(m)
    for r in rows.runs:
        store.put_run(r)
    store.put_generations(rows.generations)
    store.put_judgments(rows.judgments)
    store.put_scores(rows.scores)


def big_store(path: Path) -> Store:
    """10 models (a base, 3 seeds x 3 epochs) x 4 benchmarks x 2,500 prompts = 100,000
    responses, the safety ones judged by a harm guard, a refusal keyword judge and a coherence
    judge; every tenth response carries injected markup (ATTACKS)."""
    store = Store(path)
    hp = json.dumps({"alpha": 16, "epochs": 3, "learning_rate": 0.001, "rank": 8})
    models = [ModelRow("base", "big", "/m", "big-key")]
    for seed in BIG_SEEDS:
        run = f"run{seed}"
        store.put_run(RunRow(run, "big", "big-key", "t", hp, seed, 3, "{}"))
        models += [ModelRow(f"{run}-e{e}", "big", "/m", "big-key", run, e, f"/{run}/{e}")
                   for e in BIG_EPOCHS]  # fmt: skip
    for m in models:
        store.put_model(m)
    for n, m in enumerate(models):
        gens, judgments = [], []
        for bench, kind in BIG_BENCHES:
            for i in range(BIG_PROMPTS):
                key = f"{m.model_key}|{bench}|{i:05d}"
                attack = ATTACKS[i // 10 % len(ATTACKS)] if i % 10 == 0 else ""
                category = f"cat{i % 5}" if kind == "harmful" else None
                gens.append(GenerationRow(
                    key, m.model_key, bench, f"p{i}", kind, category, f"Prompt {i} of {bench}",
                    None, "chat", "{}", "{}", 0, f"Answer {n}/{i} {attack}", 8, 16, "eos",
                    "test",
                ))  # fmt: skip
                if kind != "task":
                    judgments += _judgments(key, kind, n, i)
        store.put_generations(gens)
        store.put_judgments(judgments)
    return store


def _judgments(gen: str, kind: str, n: int, i: int) -> list[JudgmentRow]:
    """A guard (harm and refusal), a keyword refusal judge and a coherence judge; they
    disagree on about one response in seven, and the guard fails to parse one in 97."""
    harm = (i * 7 + n) % 10 < n  # more harm in later models
    refused = "none" if harm else "full"
    keyword = refused if i % 7 else ("full" if refused == "none" else "none")
    out = [
        JudgmentRow(f"{gen}|kw", gen, "kw", "1", "{}", None, None, keyword, None, None, False, ""),
        JudgmentRow(f"{gen}|coh", gen, "coh", "1", "{}", None, None, None, i % 11 != 3, None,
                    False, ""),
    ]  # fmt: skip
    if i % 97 == 5:
        out.append(JudgmentRow(f"{gen}|guard", gen, "guard", "1", "{}", None, None, None, None,
                               None, True, "???"))  # fmt: skip
    else:
        harmful = harm if kind == "harmful" else None
        out.append(JudgmentRow(f"{gen}|guard", gen, "guard", "1", "{}", harmful, None, refused,
                               None, None, False, ""))  # fmt: skip
    return out
