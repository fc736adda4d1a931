"""Decoding per prompt set and task: precedence, keys, counts, the truncation table."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from capsafe.analysis.labels import format_labels
from capsafe.analysis.rows import ExperimentRows
from capsafe.config import ConfigError, DecodingOverride, DecodingSpec, load_config, parse_config
from capsafe.config import resolve_decoding as resolve
from capsafe.data import decoding as defaults
from capsafe.pipeline import STORE_FILE, describe_plan, load_inputs, run_experiment
from capsafe.report.explorer import expand_explorer_data
from capsafe.store import Store

BASE = {"name": "x", "base_models": [{"name": "m", "path": "m"}], "finetune": None}


def test_precedence_field_by_field():
    registered = {"max_new_tokens": 512}
    # Nothing said: the set's registered default.
    assert resolve(DecodingSpec(), registered, None).max_new_tokens == 512
    # The experiment's decoding, where it gives the field, beats the set's default...
    experiment = DecodingSpec(max_new_tokens=64, temperature=0.7, sample_seeds=[0, 1])
    assert resolve(experiment, registered, None).max_new_tokens == 64
    # ... and a field it does not give is left to the default.
    sampled = DecodingSpec(temperature=0.7, sample_seeds=[0, 1])
    assert resolve(sampled, registered, None).max_new_tokens == 512
    # The entry's own decoding beats both; its seeds replace the experiment's.
    own = DecodingOverride(max_new_tokens=8, samples_per_prompt=3)
    got = resolve(experiment, registered, own)
    assert (got.max_new_tokens, got.temperature, got.sample_seeds) == (8, 0.7, [0, 1, 2])
    greedy = resolve(experiment, registered, DecodingOverride(temperature=0.0, sample_seeds=[0]))
    assert (greedy.temperature, greedy.sample_seeds) == (0.0, [0])


def test_a_bad_merge_names_the_entry():
    with pytest.raises(ConfigError, match=r"safety\.1\.decoding: greedy decoding"):
        parse_config(BASE | {"safety": [{"name": "a"}, {"name": "b", "decoding":
                     {"samples_per_prompt": 2}}]})  # fmt: skip
    with pytest.raises(ConfigError, match=r"task\.decoding.*max_new_tokens"):
        parse_config(BASE | {"task": {"name": "t", "decoding": {"max_new_tokens": 0}},
                             "safety": [{"name": "a"}]})  # fmt: skip
    with pytest.raises(ConfigError, match="max_tokens"):
        parse_config(BASE | {"safety": [{"name": "a", "decoding": {"max_tokens": 9}}]})


def test_every_default_names_decoding_fields():
    fields = set(DecodingSpec.model_fields)
    for name, given in defaults.DEFAULTS.items():
        assert given and set(given) <= fields, name
        DecodingSpec(**given)


def test_registered_defaults_reach_the_jobs(small_config, monkeypatch):
    monkeypatch.setitem(defaults.DEFAULTS, "organism/harmful", {"max_new_tokens": 5})
    path = small_config(finetune=None, decoding={"temperature": 0.0})
    inputs = load_inputs(load_config(path), progress=False)
    assert inputs.decodings["organism/harmful"].max_new_tokens == 5
    assert inputs.decodings["organism/lookalike"].max_new_tokens == 64  # DecodingSpec's
    # The experiment's own max_new_tokens beats the registered default.
    inputs = load_inputs(load_config(small_config(finetune=None)), progress=False)
    assert inputs.decodings["organism/harmful"].max_new_tokens == 24


@pytest.mark.slow
def test_each_set_generates_with_its_own_decoding(small_config):
    path = small_config(
        finetune=None,
        task={"name": "organism_arithmetic", "test_limit": 4, "decoding": {"max_new_tokens": 16}},
        safety=[
            {"name": "organism/harmful", "limit": 6, "decoding": {"max_new_tokens": 3}},
            {
                "name": "organism/lookalike",
                "limit": 4,
                "decoding": {"temperature": 0.8, "samples_per_prompt": 2},
            },
        ],  # fmt: skip
    )
    cfg = load_config(path)
    plan = describe_plan(cfg)["plan"]
    outcome = run_experiment(cfg, progress=False)
    with Store(cfg.output_dir / STORE_FILE) as store:
        gens = store.generations()
        rows = ExperimentRows.from_store(store)
    assert outcome.generated == plan["generations"] == len(gens) == 4 + 6 + 4 * 2
    decoding = {g.prompt_set: json.loads(g.decoding) for g in gens}
    assert decoding["organism/capability_test"]["max_new_tokens"] == 16
    assert decoding["organism/harmful"]["max_new_tokens"] == 3
    assert decoding["organism/lookalike"] == {"max_new_tokens": 24, "temperature": 0.8,
                                              "top_p": 1.0}  # fmt: skip
    per_set = Counter((g.prompt_set, g.sample_seed) for g in gens)
    assert per_set[("organism/lookalike", 0)] == per_set[("organism/lookalike", 1)] == 4
    harmful = [g for g in gens if g.prompt_set == "organism/harmful"]
    assert all(g.n_completion_tokens <= 3 for g in harmful)
    cut = sum(g.finish_reason == "length" for g in harmful)
    assert cut > 0  # three tokens cut the organism's refusals short
    # Sets decoded differently keep one format label: they are not two formats.
    assert set(format_labels(rows).values()) == {cfg.formats[0].name}
    page = outcome.report.read_text()
    assert "Responses cut at their token limit, per prompt set" in page
    assert f"({cut}/6)" in page
    # ... and each cut response is marked in the explorer (the report's and capsafe view's).
    data = page.split("id='explorer-data'>", 1)[1].split("</script>")[0]
    marked = [r for r in expand_explorer_data(json.loads(data)) if r["x"]]
    assert len(marked) == sum(g.finish_reason == "length" for g in gens) >= cut
