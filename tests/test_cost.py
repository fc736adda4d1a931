"""The dry run's cost: counts, tokens and GPU-hours per step, checked against a real run."""

from __future__ import annotations

import json
import math

import pytest

from capsafe.cli import main
from capsafe.config import load_config
from capsafe.cost import KNOWN_PARAMS, estimate, model_params, safetensors_parameters
from capsafe.pipeline import STORE_FILE, load_inputs, run_experiment
from capsafe.store import Store


def test_parameters_are_read_from_the_safetensors_headers(organism_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(organism_dir)
    assert safetensors_parameters(organism_dir) == sum(p.numel() for p in model.parameters())


def test_where_a_size_comes_from(small_config):
    cfg = load_config(small_config())
    assert (
        model_params("meta-llama/Llama-3.1-8B-Instruct", cfg)
        == KNOWN_PARAMS["meta-llama/Llama-3.1-8B-Instruct"]
    )
    assert model_params("someone/unknown-model", cfg) is None
    assert model_params("someone/unknown-model", cfg, 3.0) == 3.0


def test_the_plan_counts_every_step(small_config):
    path = small_config(
        base_models=[
            {"name": "organism", "path": "builtin:organism"},
            {"name": "hub", "path": "someone/not-here", "params": 7.0},
        ],  # fmt: skip
        judges=[
            {"name": "keyword_refusal"},
            {"name": "llama_guard_3", "args": {"model": "someone/guard"}},
        ],  # fmt: skip
    )
    cfg = load_config(path)
    inputs = load_inputs(cfg, progress=False)
    steps = {s.step: s for s in estimate(cfg, inputs)}
    ft = steps["finetune organism"]
    # 1 setting x 1 seed x 2 epochs of ceil(160 / 16) optimizer steps.
    assert ft.count == 2 * math.ceil(160 / 16) and ft.input_tokens > 0
    gen, hub = steps["generate organism"], steps["generate hub"]
    per_model = 12 + 12 + 8  # task test + harmful + lookalike prompts
    assert gen.count == hub.count == 3 * per_model  # the base and two epochs each
    assert gen.generated_tokens == 3 * per_model * 24  # every response at its limit
    # The hub model is not here: its tokens are estimated from characters, its size given.
    assert hub.note == "tokens estimated from characters" and gen.note == ""
    rate = cfg.estimate
    assert hub.gpu_hours == pytest.approx(
        (hub.input_tokens * 7.0 / rate.prefill + hub.generated_tokens * 7.0 / rate.decode) / 3600
    )
    assert steps["judge keyword_refusal"].note == "CPU"
    assert steps["judge llama_guard_3"].count == 2 * 3 * (12 + 8)
    assert steps["judge llama_guard_3"].gpu_hours is None  # someone/guard's size is unknown
    assert "judges[].params" in steps["judge llama_guard_3"].note
    assert steps["score"].count == 2 * 3 * 12


@pytest.mark.slow
def test_prompt_tokens_match_what_the_backend_read(small_config, capsys):
    path = small_config(finetune=None)
    assert main(["run", str(path), "--dry-run", "--json", "-q"]) == 0
    plan = json.loads(capsys.readouterr().out)
    gen = next(c for c in plan["cost"] if c["step"] == "generate organism")
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    with Store(load_config(path).output_dir / STORE_FILE) as store:
        gens = store.generations()
    assert gen["count"] == len(gens)
    assert gen["input_tokens"] == sum(g.n_prompt_tokens for g in gens)
    assert sum(g.n_completion_tokens for g in gens) <= gen["generated_tokens"]
    # After the run, each step's time stands beside its estimate.
    assert "each step's time beside the cost estimate" in out
    assert f"generate: {len(gens):,} of {len(gens):,} done; estimated" in out
    # The dry run's table, for a reader.
    assert main(["run", str(path), "--dry-run", "-q"]) == 0
    text = capsys.readouterr().out
    assert "GPU-hours" in text and "generate organism" in text and "total" in text
    assert run_experiment(load_config(path), progress=False).generated == 0
