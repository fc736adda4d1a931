"""examples/paper.yaml, the research's own study: its dry run plans it all on a machine that
has none of its models or data, and the same config, shrunk by overrides (the organism in
place of the hub models, local copies of the data), runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capsafe.cli import main
from capsafe.config import load_config
from capsafe.pipeline import STORE_FILE, run_experiment
from capsafe.store import Store

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "examples" / "paper.yaml"
DATA = REPO / "tests" / "data" / "safety"


def test_the_dry_run_plans_the_study_without_its_models_or_data(capsys, tmp_path):
    # Nothing of it is here, and the dry run reads only the hub cache (it downloads nothing,
    # so it asks no server: on this machine the hub cannot be reached at all).
    import huggingface_hub.constants

    offline_before, out = huggingface_hub.constants.HF_HUB_OFFLINE, tmp_path / "out"
    assert main(["run", str(PAPER), "--dry-run", "--json", "-q", f"output_dir={out}"]) == 0
    plan = json.loads(capsys.readouterr().out)
    p = plan["plan"]
    # 3 bases x (3 lr x 2 ranks x 3 seeds = 18 runs x 5 epochs + the base).
    assert (p["bases"], p["runs"], p["checkpoints"], p["models"]) == (3, 54, 270, 273)
    # Each model answers 500 GSM8K items and 400 + 450 + 313 + 440 + 4 x 500 safety prompts.
    assert p["prompts_per_model"] == 500 + 400 + 450 + 313 + 440 + 4 * 500
    assert p["judgments"] == 273 * (400 + 450 + 313 + 440 + 4 * 500) * 6
    not_here = "\n".join(plan["not_here"])
    for name in ("harmbench", "sorrybench", "gsm8k", "meta-llama/Llama-3.1-8B-Instruct",
                 "meta-llama/Llama-Guard-3-8B"):  # fmt: skip
        assert name in not_here
    assert "it is gated" in not_here  # HarmBench's hub copy
    steps = {c["step"]: c for c in plan["cost"]}
    ft = steps["finetune llama-3.1-8b"]
    assert ft["count"] == 18 * 5 * -(-7473 // 16) and ft["params"] == 8.03
    assert all(c["gpu_hours"] for c in plan["cost"] if c["note"] != "CPU")
    assert not out.exists()  # a dry run writes nothing
    assert huggingface_hub.constants.HF_HUB_OFFLINE is offline_before  # ... and leaves it so
    assert main(["run", str(PAPER), "--dry-run", "-q", f"output_dir={out}"]) == 0
    text = capsys.readouterr().out
    assert "not on this machine" in text and "GPU-hours" in text


SHRUNK = [
    "base_models=[{name: organism, path: 'builtin:organism'}]",
    f"task={{name: gsm8k, path: {REPO.parent / 'shared' / 'datasets' / 'gsm8k'}, "
    "train_limit: 32, test_limit: 4}",
    "finetune.grid={learning_rate: [1.0e-3], rank: [4], alpha: [8], epochs: [1]}",
    "finetune.seeds=[0]",
    "finetune.max_length=256",
    f"safety.0.path={REPO.parent / 'shared' / 'datasets' / 'harmbench' / 'behavior_datasets'}",
    f"safety.1.path={REPO.parent / 'shared' / 'datasets' / 'xstest' / 'xstest_prompts.csv'}",
    f"safety.2.path={REPO.parent / 'shared' / 'datasets' / 'strongreject'}",
    f"safety.3.path={DATA / 'sorrybench'}",
    f"safety.4.path={DATA / 'airbench.csv'}",
    f"safety.5.path={DATA / 'beavertails.jsonl'}",
    f"safety.6.path={DATA / 'pku_saferlhf'}",
    f"safety.7.path={DATA / 'toxigen'}",
    *[f"safety.{i}.limit=3" for i in range(8)],
    "decoding={temperature: 0.0, max_new_tokens: 16}",  # beats every set's own default
    "generation.batch_size=16",
]


@pytest.mark.slow
def test_the_study_shrunk_runs_end_to_end(organism_dir, tmp_path):
    judges = ("judges=[{name: llama_guard_3, args: {model: 'builtin:organism-guard'}}, "
              "{name: keyword_refusal}, {name: coherence}]")  # fmt: skip
    cfg = load_config(PAPER, [*SHRUNK, judges, f"output_dir={tmp_path / 'paper'}",
                              f"organism.dir={organism_dir}"])  # fmt: skip
    outcome = run_experiment(cfg, progress=False)
    with Store(cfg.output_dir / STORE_FILE) as store:
        gens = store.generations()
        sets = {g.prompt_set for g in gens}
        assert store.count("checkpoints") == 1
    assert sets >= {"gsm8k", "harmbench", "xstest", "strongreject", "sorrybench", "airbench",
                    "beavertails", "pku_saferlhf"}  # fmt: skip
    assert outcome.generated == len(gens) == 2 * outcome.summary.prompts_per_model
    assert outcome.judged == outcome.summary.judgments
    assert outcome.scored == 2 * 4
    assert outcome.report is not None and outcome.report.is_file()
