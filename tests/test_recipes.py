"""Training recipes on the organism: mixes, run identity, rounds, stopping, SafeLoRA, report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsafe.analysis.rows import ExperimentRows
from capsafe.config import load_config
from capsafe.data import DataContext
from capsafe.data.base import load_prompt_set
from capsafe.finetune.mixing import training_data
from capsafe.finetune.recipes import RecipeError, build_recipe
from capsafe.organism import load_world
from capsafe.pipeline import STORE_FILE, load_inputs, run_experiment
from capsafe.plan import plan_runs
from capsafe.records import TrainExample
from capsafe.report.html import render_report
from capsafe.store import Store
from tests.conftest import normalised_dump

pytestmark = pytest.mark.slow

TASK = [TrainExample(f"What is {i} plus 1?", f"{i + 1}") for i in range(200)]


def _eval_prompts(ctx: DataContext) -> set[str]:
    world = load_world(ctx.organism_dir)
    found = {it.prompt for name in ("harmful_test", "lookalike_test", "capability_test")
             for it in world[name]}  # fmt: skip
    return found | {r.text for r in load_prompt_set("organism/harmful_framed", ctx)}


def test_mixes_are_deterministic_by_seed_and_disjoint_from_evaluation(organism_dir):
    ctx = DataContext(organism_dir=organism_dir)
    held_out = _eval_prompts(ctx)
    for name, args in [("safety_mix", {"fraction": 0.2}), ("poison", {"ratio": 0.2})]:
        a = training_data(build_recipe(name, args, "x"), TASK, ctx)
        again = training_data(build_recipe(name, args, "x"), TASK, ctx)
        other = training_data(build_recipe(name, {**args, "seed": 1}, "x"), TASK, ctx)
        added = a.examples[len(TASK) :]
        assert a.examples[: len(TASK)] == TASK and len(added) == 50  # 50 / 250 = 20%
        assert added == again.examples[len(TASK) :]
        assert added != other.examples[len(TASK) :]
        assert not {e.prompt for e in added} & held_out
    safety = training_data(build_recipe("safety_mix", {"count": 5}, "x"), TASK, ctx)
    poison = training_data(build_recipe("poison", {"count": 5}, "x"), TASK, ctx)
    assert all(e.response.startswith(("I", "Sorry", "As an AI")) for e in safety.examples[-5:])
    assert all(e.response.startswith(("Sure", "Of course")) for e in poison.examples[-5:])


def test_mix_sources_from_files_leave_out_evaluation_prompts(organism_dir, tmp_path):
    ctx = DataContext(organism_dir=organism_dir)
    held = sorted(_eval_prompts(ctx))[0]
    path = tmp_path / "pairs.jsonl"
    rows = [{"q": held, "a": "no", "safe": "False"}] + [
        {"q": f"request {i}", "a": "Sure.", "safe": "False" if i % 2 else "True"} for i in range(10)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = build_recipe(
        "poison",
        {"count": 5, "source": str(path), "columns": {"prompt": "q", "response": "a"},
         "where": {"safe": "False"}},
        "x",
    )  # fmt: skip
    data = training_data(recipe, TASK, ctx, exclude=[held])
    assert data.mixes[0].dropped == 1 and data.mixes[0].available == 5
    assert {e.prompt for e in data.examples[len(TASK) :]} == {
        f"request {i}" for i in (1, 3, 5, 7, 9)
    }
    with pytest.raises(RecipeError, match="asks for 6"):
        training_data(build_recipe("poison", {**recipe.args, "count": 6}, "x"), TASK, ctx, [held])


def _recipes_config(small_config, name="recipes", **finetune):
    ft = {
        "grid": {"learning_rate": [3e-3], "rank": [4], "alpha": [8], "epochs": [2]},
        "seeds": [0],
        "batch_size": 16,
        **finetune,
    }
    return small_config(name, finetune=ft)


def test_recipe_arguments_are_part_of_the_run_id_and_baseline_ids_are_unchanged(small_config):
    def ids(recipes):
        cfg = load_config(_recipes_config(small_config, recipes=recipes))
        inputs = load_inputs(cfg, progress=False)
        return {r.level: r.run_id for r in plan_runs(cfg, "organism", "k", inputs.recipes)}

    a = ids([{"name": "baseline"}, {"name": "safety_mix", "args": {"fraction": 0.1}}])
    b = ids([{"name": "baseline"}, {"name": "safety_mix", "args": {"fraction": 0.2}}])
    c = ids([{"name": "safety_mix", "args": {"fraction": 0.1}}])
    assert a["baseline"] == b["baseline"] and a["safety_mix"] != b["safety_mix"]
    assert a["safety_mix"] == c["safety_mix"]
    # The baseline's id is the one runs had before recipes existed: existing stores are reused.
    from capsafe.keys import digest
    from capsafe.plan import examples_digest

    cfg = load_config(_recipes_config(small_config))
    inputs = load_inputs(cfg, progress=False)
    settings = cfg.finetune.model_dump(
        mode="json", exclude={"grid", "seeds", "format", "recipes", "rounds", "report_to"}
    )
    old = digest(
        base="k",
        task=inputs.task_id,
        train=examples_digest(inputs.train),
        hparams=cfg.finetune.settings()[0],
        seed=0,
        settings={**settings, "recipe": "1"},
    )
    assert a["baseline"] == old


def test_recipes_run_end_to_end_and_the_report_compares_them(small_config):
    path = _recipes_config(
        small_config,
        recipes=[
            {"name": "baseline"},
            {"name": "safety_mix", "args": {"fraction": 0.3}},
            {"name": "stop_at_target", "args": {"accuracy": 1.0}},  # never reached: all epochs
            {"name": "kl_to_aligned", "args": {"beta": 0.5}},
            {"name": "baseline", "label": "two_round",
             "rounds": [{"epochs": 1}, {"epochs": 1, "recipe": "poison", "args": {"ratio": 0.3}}]},
        ],
    )  # fmt: skip
    cfg = load_config(path)
    outcome = run_experiment(cfg, progress=False, report=False)
    with Store(cfg.output_dir / STORE_FILE) as store:
        rows = ExperimentRows.from_store(store)
        ckpts = {}
        for run in store.runs():
            spec = json.loads(run.settings).get("recipe_spec") or {}
            ckpts[spec.get("label", "baseline")] = [c.epoch for c in store.checkpoints(run.run_id)]
    assert ckpts == {
        level: [1, 2]
        for level in ("baseline", "safety_mix", "stop_at_target", "kl_to_aligned", "two_round")
    }
    assert outcome.epochs_trained == 10
    runs = cfg.output_dir / "runs" / "organism"
    assert len(list(runs.glob("*/round-2/epoch-1"))) == 1  # the second round's own folder
    again = run_experiment(cfg, progress=False, report=False)
    assert (again.epochs_trained, again.generated, again.judged) == (0, 0, 0)

    from capsafe.config import ReportSpec

    spec = ReportSpec(capability_target={"accuracy": 0.0})  # every run matched at epoch 1
    html = render_report(rows, config=None, spec=spec, title="r", generated_at="now",
                         capsafe_version="test")  # fmt: skip
    section = html.split("id='recipes'")[1].split("</section>")[0]
    for level in ("safety_mix", "stop_at_target", "kl_to_aligned", "two_round"):
        assert level in section
    assert "recipes_vs_baseline.csv" in section and "recipe_price.csv" in section
    summary = html.split("id='summary'")[1].split("</section>")[0]
    assert "Recipes at matched capability" in summary


def test_stop_at_target_stops_at_the_first_epoch_reaching_it(small_config, organism_dir, tmp_path):
    from capsafe.keys import folder_content_hash
    from capsafe.plan import base_model_key
    from capsafe.training import finetune_run

    cfg = load_config(_recipes_config(
        small_config, grid={"learning_rate": [3e-3], "rank": [4], "alpha": [8], "epochs": [3]},
        recipes=[{"name": "stop_at_target", "args": {"accuracy": 0.5}}]))  # fmt: skip
    inputs = load_inputs(cfg, progress=False)
    asked = []

    def evaluate(model):  # accuracies 0.2, 0.6, ...: the target is reached at epoch 2
        asked.append(model.epoch)
        return 0.2 + 0.4 * (model.epoch - 1)

    with Store(tmp_path / "s.db") as store:
        base_key = base_model_key(folder_content_hash(organism_dir, store))
        (run,) = plan_runs(cfg, "organism", base_key, inputs.recipes)
        rows, trained = finetune_run(cfg, run, organism_dir, store, evaluate, False)
        assert [r.epoch for r in rows] == [1, 2] and trained == 2 and asked == [1, 2]

        def must_not_run(model):
            raise AssertionError("a finished run was evaluated again")

        rows, trained = finetune_run(cfg, run, organism_dir, store, must_not_run, False)
        assert [r.epoch for r in rows] == [1, 2] and trained == 0
        assert not (run.out_dir / "epoch-3").exists()


def test_the_report_without_recipes_says_so(finished_small_store):
    html = render_report(finished_small_store, config=None, title="r", generated_at="now",
                         capsafe_version="test")  # fmt: skip
    section = html.split("id='recipes'")[1].split("</section>")[0]
    assert "One training recipe" in section or "needs capability anchoring" in section


@pytest.fixture()
def finished_small_store(small_config):
    cfg = load_config(small_config("plain"))
    run_experiment(cfg, progress=False, report=False)
    with Store(cfg.output_dir / STORE_FILE) as store:
        return ExperimentRows.from_store(store)


def test_safelora_projects_every_epoch_and_evaluates_the_projection(small_config, tmp_path):
    from capsafe.organism import build_organism

    unaligned = build_organism(tmp_path / "other", seed=0, steps=3, progress=False)
    path = _recipes_config(
        small_config,
        name="safelora",
        recipes=[
            {"name": "safelora", "args": {"unaligned_path": str(unaligned), "threshold": 1.0}}
        ],
    )
    cfg = load_config(path)
    run_experiment(cfg, progress=False, report=False)
    with Store(cfg.output_dir / STORE_FILE) as store:
        ckpts = store.checkpoints()
    assert [c.epoch for c in ckpts] == [1, 2]
    for c in ckpts:
        folder = Path(c.adapter_dir)
        assert folder.name.startswith("safelora-epoch-")
        report = json.loads((folder / "capsafe_safelora.json").read_text())
        assert report["projected"] == len(report["layers"]) > 0  # threshold 1: every layer
        assert (folder.parent / folder.name.removeprefix("safelora-")).is_dir()  # the raw one


def test_kill_and_resume_across_a_round_boundary(small_config, tmp_path):
    ft = {"rounds": [{"epochs": 1}, {"epochs": 1, "recipe": "safety_mix", "args": {"count": 20}}]}
    clean = load_config(_recipes_config(small_config, name="clean", **ft))
    run_experiment(clean, progress=False, report=False)
    killed_path = _recipes_config(small_config, name="killed", **ft)
    killed = load_config(killed_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsafe.cli", "run", str(killed_path), "-q", "--no-report"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    runs = killed.output_dir / "runs" / "organism"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if list(runs.glob("*/round-2/trainer")):  # round 1 done, round 2 training
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run_experiment(killed, progress=False, report=False)
    assert resumed.epochs_trained == 1  # round 2's epoch only

    assert normalised_dump(killed.output_dir) == normalised_dump(clean.output_dir)
    shutil.rmtree(killed.output_dir)


def test_organism_build_writes_its_unaligned_twin(tmp_path):
    from capsafe.cli import main
    from capsafe.organism.build import UNALIGNED_DIR, ensure_unaligned

    folder = tmp_path / "organism"
    assert main(["organism", "build", str(folder), "--steps", "3", "-q"]) == 0
    twin = folder / UNALIGNED_DIR
    manifest = json.loads((twin / "capsafe_organism.json").read_text())
    aligned = json.loads((folder / "capsafe_organism.json").read_text())
    assert "harmful_train" not in manifest["mix"] and "harmful_train" in aligned["mix"]
    assert manifest["world_sha256"] == aligned["world_sha256"] and manifest["steps"] == 3
    assert (twin / "tokenizer.json").read_bytes() == (folder / "tokenizer.json").read_bytes()
    assert (twin / "model.safetensors").read_bytes() != (folder / "model.safetensors").read_bytes()
    assert ensure_unaligned(folder, progress=False) == twin  # reused, not rebuilt
