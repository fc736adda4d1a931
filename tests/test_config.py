from pathlib import Path

import pytest
import yaml

from capsafe.config import (
    ConfigError,
    ReportSpec,
    apply_overrides,
    load_config,
    parse_config,
    report_spec,
)

MINIMAL = {
    "name": "t",
    "base_models": [{"name": "m", "path": "builtin:organism"}],
    "task": {"name": "organism_arithmetic"},
    "safety": [{"name": "organism/harmful"}],
}


def write(tmp_path: Path, data: object, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_example_configs_validate():
    examples = Path(__file__).resolve().parents[1] / "examples"
    assert list(examples.glob("*.yaml"))
    for path in examples.glob("*.yaml"):
        load_config(path)


def test_unknown_key_names_its_path(tmp_path):
    data = {**MINIMAL, "finetune": {"grid": {"learning_rat": [1e-3]}}}
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    assert "finetune.grid.learning_rat: unknown key" in str(err.value)
    assert "exp.yaml" in str(err.value)


def test_wrong_type_names_field_and_value(tmp_path):
    data = {**MINIMAL, "decoding": {"max_new_tokens": "many"}}
    with pytest.raises(ConfigError, match=r"decoding\.max_new_tokens: .*integer.*'many'"):
        load_config(write(tmp_path, data))


def test_missing_required_field():
    data = {k: v for k, v in MINIMAL.items() if k != "safety"}
    with pytest.raises(ConfigError, match=r"safety: Field required"):
        parse_config(data, "x.yaml")
    # A task is required only when something is fine-tuned.
    data = {k: v for k, v in MINIMAL.items() if k != "task"}
    with pytest.raises(ConfigError, match=r"fine-tuning needs a capability task"):
        parse_config(data, "x.yaml")
    assert parse_config({**data, "finetune": None}).task is None


def test_formats_sampling_and_adapters():
    cfg = parse_config(
        {
            **MINIMAL,
            "formats": [{"name": "a"}, {"name": "b", "system": "safety"}],
            "finetune": {"format": "a"},
            "decoding": {"temperature": 0.7, "samples_per_prompt": 3},
        }
    )
    assert cfg.decoding.sample_seeds == [0, 1, 2]
    assert cfg.training_format().name == "a"
    bad = [
        ({"formats": [{"name": "a", "system": "safety", "system_prompt": "x"}]}, "not both"),
        ({"finetune": {"format": "zzz"}}, "not one of the formats"),
        ({"formats": [{"name": "r", "chat_template": False}], "finetune": {"format": "r"}}, "chat"),
        ({"decoding": {"samples_per_prompt": 2, "sample_seeds": [5]}}, "not both"),
        ({"decoding": {"samples_per_prompt": 0}}, "positive integer"),
        ({"adapters": [{"name": "t", "path": "x", "base": "nope"}]}, "names base 'nope'"),
    ]
    for extra, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_config({**MINIMAL, **extra})


def test_duplicate_names_and_empty_lists_rejected():
    with pytest.raises(ConfigError, match="repeated"):
        parse_config({**MINIMAL, "safety": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ConfigError, match="finetune.seeds"):
        parse_config({**MINIMAL, "finetune": {"seeds": []}})


def test_greedy_with_several_sample_seeds_rejected():
    with pytest.raises(ConfigError, match="one sample seed"):
        parse_config({**MINIMAL, "decoding": {"sample_seeds": [0, 1]}})


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nbase_models: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+"):
        load_config(path)


def test_precedence_defaults_yaml_overrides(tmp_path):
    data = {**MINIMAL, "decoding": {"max_new_tokens": 10}}
    path = write(tmp_path, data)
    assert parse_config(MINIMAL).decoding.max_new_tokens == 64  # default
    assert load_config(path).decoding.max_new_tokens == 10  # YAML beats default
    cfg = load_config(
        path, ["decoding.max_new_tokens=7", "finetune.seeds=[3,4]", "safety.0.limit=5"]
    )
    assert cfg.decoding.max_new_tokens == 7  # command line beats YAML
    assert cfg.finetune.seeds == [3, 4]
    assert cfg.safety[0].limit == 5


def test_override_errors_are_clear():
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(MINIMAL, ["decoding"])
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(MINIMAL, ["safety.7.limit=3"])


def test_bad_override_value_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="finetune.batch_size"):
        load_config(write(tmp_path, MINIMAL), ["finetune.batch_size=0"])


def test_relative_paths_resolve_against_config_file(tmp_path):
    sub = tmp_path / "cfgs"
    sub.mkdir()
    cfg = load_config(write(sub, {**MINIMAL, "organism": {"dir": "org"}}))
    assert cfg.organism.dir == (sub / "org").resolve()
    assert cfg.output_dir == (sub / "runs" / "t").resolve()


def test_grid_is_cartesian_product():
    cfg = parse_config(
        {**MINIMAL, "finetune": {"grid": {"learning_rate": [1e-3, 2e-3], "rank": [4, 8]}}}
    )
    settings = cfg.finetune.settings()
    assert len(settings) == 4
    assert {(s["learning_rate"], s["rank"]) for s in settings} == {
        (1e-3, 4),
        (1e-3, 8),
        (2e-3, 4),
        (2e-3, 8),
    }


def test_report_spec_from_saved_config_and_overrides():
    spec, note = report_spec({"report": {"capability_target": {"accuracy": 0.4}}})
    assert (spec.capability_target.accuracy, spec.capability_target.gain_fraction) == (0.4, None)
    assert note is None and report_spec(None)[0] == ReportSpec()
    spec, _ = report_spec(None, ["report.capability_target={accuracy: 0.5}",
                                 "report.power_change=0.05"])  # fmt: skip
    assert spec.capability_target.accuracy == 0.5 and spec.power_change == 0.05
    with pytest.raises(ConfigError, match="exactly one of accuracy, gain_fraction"):
        report_spec(None, ["report.capability_target.accuracy=0.5"])  # gain_fraction kept too
    with pytest.raises(ConfigError, match="only change report"):
        report_spec(None, ["decoding.max_new_tokens=3"])
    with pytest.raises(ConfigError, match="power_change"):
        report_spec(None, ["report.power_change=2"])
    # Settings an older capsafe saved are not fatal: defaults, and a note saying why.
    spec, note = report_spec({"report": {"old_key": 1}})
    assert spec == ReportSpec() and "old_key: unknown key" in note


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ("decoding.temperature=.inf", "decoding.temperature", "finite"),
        ("finetune.grid.learning_rate=[.nan]", "finetune.grid.learning_rate.0", "finite"),
        ("finetune.seeds=[true]", "finetune.seeds.0", "valid integer"),
        ("safety.0.limit=2.5", "safety.0.limit", "valid integer"),
        ("safety.0.stratify=yes_please", "safety.0.stratify", "valid boolean"),
        ("name=../../x", "name", "plain folder name"),
        ("name=.hidden", "name", "plain folder name"),
        ("report.power_change=.nan", "report.power_change", "finite"),
    ],
)
def test_nonsense_values_are_refused_naming_the_field(tmp_path, override, field, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), [override])
    assert f" {field}: " in str(err.value) and message in str(err.value)


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "finetune: {grid: {learning_rate: [1e-3, 2E-4]}}\n")
    assert load_config(path).finetune.grid.learning_rate == [1e-3, 2e-4]
    cfg = load_config(path, ["finetune.grid.learning_rate=[5e-4]"])
    assert cfg.finetune.grid.learning_rate == [5e-4]


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "decoding: {max_new_tokens: 8}\n" * 2)
    with pytest.raises(
        ConfigError, match=r"exp\.yaml: line \d+, column 1: .*'decoding' is given twice"
    ):
        load_config(path)
    nested = "name: t\nreport: {power_change: 0.1, power_change: 0.2}\n"
    path.write_text(nested)
    with pytest.raises(ConfigError, match="'power_change' is given twice"):
        load_config(path)


def test_malformed_override_value_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), ["finetune.seeds=[0,1"])
    assert str(err.value).startswith("override 'finetune.seeds=[0,1': the value is not valid YAML")
    assert "\n" not in str(err.value)


def test_a_folder_given_as_the_config_says_so(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; give the experiment's YAML file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="finetune.max_length"):
        load_config(write(tmp_path, MINIMAL), ["finetune.max_length=1"])


def test_two_custom_sets_with_their_own_set_name_are_allowed():
    custom = {"name": "custom", "path": "a.jsonl", "args": {"columns": {"text": "p"}}}
    two = [custom, {**custom, "args": {**custom["args"], "set_name": "mine"}}]
    assert len(parse_config({**MINIMAL, "safety": two}).safety) == 2
    with pytest.raises(ConfigError, match="repeated: \\['custom'\\].*set_name"):
        parse_config({**MINIMAL, "safety": [custom, custom]})


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ("task.args={nope: 1}", "task.args: capability task 'organism_arithmetic'"),
        ("safety.0.args={nope: 1}", "safety.0.args: prompt set 'organism/harmful'"),
        ("generation.backend=nope", "unknown backend 'nope'"),
        ("generation.args={nope: 1}", "generation: backend 'transformers'"),
        ("generation.args={dtype: f17}", "generation: backend 'transformers': unknown dtype"),
        ("judges.0.args={nope: 1}", "judges.0.args: judge 'keyword_refusal'"),
    ],
)
def test_names_and_arguments_are_checked_before_any_work(tmp_path, override, where):
    from capsafe.pipeline import check_config

    data = {**MINIMAL, "judges": [{"name": "keyword_refusal"}]}
    cfg = load_config(write(tmp_path, data), [override])
    with pytest.raises((ValueError, KeyError)) as err:
        check_config(cfg)
    assert where in str(err.value) and "Traceback" not in str(err.value)


def test_checking_a_config_on_a_fresh_machine_builds_nothing(tmp_path):
    """Before the organism exists (a fresh clone's quick start), the plan-time check of a
    config naming the organism's guard passes and builds neither organism nor guard."""
    from capsafe.pipeline import check_config

    organism = tmp_path / "no-organism-yet"
    guard = {"name": "llama_guard_3", "args": {"model": "builtin:organism-guard"}}
    data = {**MINIMAL, "organism": {"dir": str(organism)}, "judges": [guard]}
    check_config(load_config(write(tmp_path, data)))
    assert not organism.exists()
