"""Training recipes without a model: arguments, run identity, SafeLoRA's projection, the KL."""

from __future__ import annotations

import math

import pytest
import torch

from capsafe.config import ConfigError, parse_config
from capsafe.finetune.mixing import mix_size
from capsafe.finetune.recipes import RECIPES, RecipeError, SafeLoraSpec, build_recipe
from capsafe.finetune.regularised import kl_on_labels
from capsafe.finetune.safelora import alignment_matrix, choose_layers, layer_cosine, project


def test_every_recipe_the_issue_names_is_registered():
    assert set(RECIPES.names()) >= {
        "baseline", "safety_mix", "poison", "ptst", "safelora", "kl_to_aligned", "stop_at_target",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("safety_mix", {}, "exactly one of count, fraction"),
        ("safety_mix", {"count": 3, "fraction": 0.1}, "exactly one of count, fraction"),
        ("safety_mix", {"fraction": 1.5}, r"fraction must be in \(0, 1\)"),
        ("poison", {"ratio": 0}, r"ratio must be in \(0, 1\)"),
        ("poison", {"count": -2}, "count must be a positive integer"),
        ("safelora", {"unaligned_path": "x", "select": "all"}, "select must be threshold"),
        ("kl_to_aligned", {"beta": 0}, "beta must be > 0"),
        ("stop_at_target", {"accuracy": 2}, r"accuracy must be in \(0, 1\]"),
        ("safety_mix", {"fraction": 0.1, "source": "organism", "columns": {"prompt": "q"}},
         "takes no columns"),
        ("safety_mix", {"frac": 0.1}, "unexpected keyword argument 'frac'"),
    ],
)  # fmt: skip
def test_bad_recipe_arguments_name_the_field(name, args, message):
    with pytest.raises(RecipeError, match=message) as err:
        build_recipe(name, args, "finetune.recipes.2")
    assert str(err.value).startswith("finetune.recipes.2:")


def test_mix_sizes_by_count_and_fraction():
    mix = build_recipe("safety_mix", {"fraction": 0.1}, "x").mixes[0]
    assert mix_size(mix, 1200) == 133  # 133 / (1200 + 133) = 9.98%, the closest to 10%
    assert mix_size(build_recipe("poison", {"count": 7}, "x").mixes[0], 1200) == 7


def _config(**finetune):
    return parse_config(
        {
            "name": "x",
            "base_models": [{"name": "m", "path": "builtin:organism"}],
            "task": {"name": "organism_arithmetic"},
            "finetune": finetune,
            "safety": [{"name": "organism/harmful"}],
            "formats": [{"name": "chat"}, {"name": "safe", "system": "safety"}],
        }
    )


def test_config_checks_recipe_labels_rounds_and_training_formats():
    with pytest.raises(ConfigError, match="recipe labels must be unique"):
        _config(recipes=[{"name": "baseline"}, {"name": "baseline"}])
    with pytest.raises(ConfigError, match="rounds set the epochs"):
        _config(grid={"epochs": [2, 3]}, rounds=[{"epochs": 1}])
    with pytest.raises(ConfigError, match=r"recipes.0.args.train_format: 'nope' is not one of"):
        _config(recipes=[{"name": "ptst", "args": {"train_format": "nope"}}])
    cfg = _config(
        format="safe",
        recipes=[
            {"name": "baseline"},
            {"name": "ptst", "args": {"train_format": {"name": "plain", "system": "none"}}},
        ],
    )
    base, ptst = cfg.finetune.recipes
    assert cfg.training_format(base).name == "safe"
    assert cfg.training_format(ptst).system == "none"


def test_alignment_matrix_and_cosine_by_hand():
    # V = diag(2, 0): ||V||_F = 2, C = V V^T / 2 = diag(2, 0).
    aligned, unaligned = (
        torch.tensor([[3.0, 0.0], [0.0, 1.0]]),
        torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
    )
    c = alignment_matrix(aligned, unaligned)
    assert torch.allclose(c, torch.tensor([[2.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
    a = torch.tensor([[1.0, 0.0]])  # r = 1, in = 2
    # B along the alignment direction: C B = 2 B, cosine 1. Orthogonal to it: C B = 0 -> 0
    # (cosine_similarity of a zero vector is 0). At 45 degrees: C B = (2, 0), cos = 1/sqrt(2).
    assert layer_cosine(c, a, torch.tensor([[1.0], [0.0]])) == pytest.approx(1.0)
    assert layer_cosine(c, a, torch.tensor([[0.0], [1.0]])) == pytest.approx(0.0)
    assert layer_cosine(c, a, torch.tensor([[1.0], [1.0]])) == pytest.approx(1 / math.sqrt(2))


def test_projection_chooses_layers_by_threshold_or_number():
    cos = {"l0": 0.9, "l1": 0.2, "l2": 0.5, "l3": 0.71}
    assert choose_layers(cos, SafeLoraSpec("u", "threshold", 0.5)) == {"l1", "l2"}
    assert choose_layers(cos, SafeLoraSpec("u", "number", num_layers=3)) == {"l1", "l2", "l3"}


def test_project_replaces_b_of_the_chosen_layers_only():
    aligned = {
        "m.q.weight": torch.tensor([[3.0, 0.0], [0.0, 1.0]]),
        "m.k.weight": torch.tensor([[3.0, 0.0], [0.0, 1.0]]),
    }
    unaligned = {k: torch.eye(2) for k in aligned}
    lora = {
        "base_model.model.m.q.lora_A.weight": torch.tensor([[1.0, 0.0]]),
        "base_model.model.m.q.lora_B.weight": torch.tensor([[1.0], [0.0]]),  # cos 1: kept
        "base_model.model.m.k.lora_A.weight": torch.tensor([[1.0, 0.0]]),
        "base_model.model.m.k.lora_B.weight": torch.tensor([[1.0], [1.0]]),  # cos .71: projected
    }
    out, layers = project(lora, aligned, unaligned, SafeLoraSpec("u", threshold=0.8))
    assert [(lay.module, lay.projected) for lay in layers] == [("m.k", True), ("m.q", False)]
    assert torch.equal(out["base_model.model.m.q.lora_B.weight"], torch.tensor([[1.0], [0.0]]))
    assert torch.allclose(out["base_model.model.m.k.lora_B.weight"], torch.tensor([[2.0], [0.0]]))
    assert torch.equal(
        out["base_model.model.m.k.lora_A.weight"], lora["base_model.model.m.k.lora_A.weight"]
    )
    with pytest.raises(ValueError, match="missing from the aligned or unaligned"):
        project(lora, {"m.q.weight": aligned["m.q.weight"]}, unaligned, SafeLoraSpec("u"))


def test_kl_on_trained_positions_only():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]]])
    same = kl_on_labels(logits, logits.clone(), torch.tensor([[-100, 1, 0]]))
    assert same.item() == pytest.approx(0.0, abs=1e-7)
    ref = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [5.0, -5.0]]])
    # labels[1:] = [1, 0]: positions 0 and 1 predict trained tokens; position 0 differs.
    p, q = torch.softmax(ref[0, 0], -1), torch.softmax(logits[0, 0], -1)
    expected = (p * (p.log() - q.log())).sum() / 2  # mean over the two trained positions
    got = kl_on_labels(logits, ref, torch.tensor([[-100, 1, 0]]))
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert kl_on_labels(logits, ref, torch.tensor([[5, -100, -100]])).item() == 0.0
