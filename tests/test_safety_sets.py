"""Safety prompt sets: the real benchmark files give their documented counts, the hub-only
sets read files in their documented schemas (tests/data/safety), and bad input fails with
errors that say where."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from capsafe.data import DataContext, EmptySetError, load_prompt_set
from capsafe.data.files import DataFileError
from capsafe.data.safety.common import content_id
from capsafe.records import PromptRecord
from capsafe.registry import UnknownNameError

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data" / "safety"
CTX = DataContext(organism_dir=REPO / ".capsafe" / "organism")  # unused by these sets


def load(name: str, path: Path | None = None, **args: object) -> list[PromptRecord]:
    records = load_prompt_set(name, CTX, path=path, **args)
    assert all(r.source == name or name == "custom" for r in records)
    assert all(isinstance(v, str) for r in records for v in r.meta.values())
    return records


def counts(records: list[PromptRecord], key: str) -> dict[str, int]:
    return dict(Counter(r.meta[key] for r in records))


# --- the real files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        ("test", {"standard": 159, "contextual": 81, "copyright": 80}),
        ("val", {"standard": 41, "contextual": 19, "copyright": 20}),
        ("all", {"standard": 200, "contextual": 100, "copyright": 100}),
    ],
)
def test_harmbench_splits(shared: Path, split: str, expected: dict[str, int]) -> None:
    records = load("harmbench", shared / "harmbench" / "behavior_datasets", split=split)
    assert counts(records, "functional_category") == expected
    assert all(r.kind == "harmful" for r in records)
    assert len({r.category for r in records}) == 7
    contextual = next(r for r in records if r.meta["functional_category"] == "contextual")
    assert (
        contextual.text == f"{contextual.meta['context']}\n\n---\n\n{contextual.meta['behavior']}"
    )


def test_harmbench_filter_and_file_path(shared: Path) -> None:
    path = shared / "harmbench" / "behavior_datasets" / "harmbench_behaviors_text_val.csv"
    records = load("harmbench", path, split="val", functional_categories=["copyright"])
    assert len(records) == 20 and {r.category for r in records} == {"copyright"}


def test_xstest(shared: Path) -> None:
    records = load("xstest", shared / "xstest")
    assert Counter(r.kind for r in records) == {"benign": 250, "harmful": 200}
    assert len({r.category for r in records}) == 18
    assert all(r.category.startswith("contrast_") for r in records if r.kind == "harmful")
    assert len(load("xstest", shared / "xstest", subset="unsafe")) == 200
    assert [r.id for r in load("xstest", shared / "xstest", subset="safe")][:2] == ["1", "2"]


def test_strongreject_advbench_sst(shared: Path) -> None:
    sr = load("strongreject", shared / "strongreject")
    assert len(sr) == 313 and Counter(r.category for r in sr)["Non-violent crimes"] == 59
    adv = load("advbench", shared / "advbench")
    assert len(adv) == 520 and adv[0].meta["target"].startswith("Sure, here is")
    sst = load("simplesafetytests", shared / "simplesafetytests")
    assert len(sst) == 100 and set(Counter(r.category for r in sst).values()) == {20}
    assert sst[0].id == "sst_001"


def test_jailbreakbench(shared: Path) -> None:
    folder = shared / "jailbreakbench" / "JBB-Behaviors"
    records = load("jailbreakbench", folder, subset="all")
    assert Counter(r.kind for r in records) == {"harmful": 100, "benign": 100}
    assert len({r.category for r in records}) == 10
    harmful = load("jailbreakbench", folder / "harmful-behaviors.csv")
    assert [r.id for r in harmful][:2] == ["harmful/0", "harmful/1"]
    with pytest.raises(ValueError, match="needs both files"):
        load("jailbreakbench", folder / "harmful-behaviors.csv", subset="all")


def test_ids_do_not_depend_on_filters(shared: Path) -> None:
    folder = shared / "harmbench" / "behavior_datasets"
    every = {r.id: r.text for r in load("harmbench", folder, split="all")}
    some = load("harmbench", folder, split="all", functional_categories="contextual")
    assert all(every[r.id] == r.text for r in some)


# --- hub-only sets, from files in their documented schemas ---------------------------


def test_sorrybench_styles_and_releases() -> None:
    records = load("sorrybench", FIXTURES / "sorrybench", prompt_styles=["base", "slang"])
    assert [r.id for r in records] == ["base/1", "base/2", "base/3", "slang/1", "slang/2"]
    assert records[2].category == "Dangerous Machinery Operation Advice"
    assert records[3].meta == {"category_id": "1", "prompt_style": "slang", "release": "202503"}
    picked = load("sorrybench", FIXTURES / "sorrybench", categories="6")
    assert [r.category for r in picked] == ["Self-Harm"]
    old = load("sorrybench", FIXTURES / "sorrybench_202406", release="202406")
    assert [r.category for r in old] == ["Impersonation", "Dangerous Machinery Operation Advice"]
    with pytest.raises(DataFileError, match=r"question\.jsonl:2: category '45' is not 1\.\.44"):
        load("sorrybench", FIXTURES / "sorrybench_202406")
    one_file = load(
        "sorrybench", FIXTURES / "sorrybench" / "question_slang.jsonl", prompt_styles="slang"
    )
    assert len(one_file) == 2


def test_beavertails_keeps_prompts_that_drew_unsafe_answers() -> None:
    records = load("beavertails", FIXTURES / "beavertails.jsonl")
    assert [r.text for r in records] == ["Placeholder question A?", "Placeholder question B?"]
    assert records[0].category == "animal_abuse"
    assert records[0].meta["categories"] == (
        "animal_abuse|privacy_violation|violence,aiding_and_abetting,incitement"
    )
    assert records[1].category == "self_harm"


def test_airbench_levels_and_repeats() -> None:
    records = load("airbench", FIXTURES / "airbench.csv", level="l4")
    assert [r.category for r in records] == [
        "Network intrusion",
        "Vulnerability probing",
        "Bullying",
    ]
    assert records[2].meta["l2_name"] == "Hate/Toxicity" and records[2].id.startswith("14.20.3/")
    assert "\n" in records[2].text


def test_toxigen_groups_and_labels() -> None:
    records = load("toxigen", FIXTURES / "toxigen")
    assert Counter((r.kind, r.category) for r in records) == {
        ("harmful", "women"): 2,
        ("harmful", "asian"): 1,
        ("benign", "women"): 1,
    }
    assert records[0].text.endswith("\n-")  # a continuation prompt, sent as written
    hate_women = load("toxigen", FIXTURES / "toxigen", groups="women", labels="hate")
    assert [r.id for r in hate_women] == ["hate_women_1k/0", "hate_women_1k/1"]


def test_donotanswer_levels() -> None:
    records = load("donotanswer", FIXTURES / "donotanswer.csv", level="types_of_harm")
    assert [r.id for r in records] == ["0", "1", "2"]
    assert records[1].category == "Risks from leaking sensitive information"
    assert records[1].meta["risk_area"] == "Information Hazards"


def test_custom_columns_and_kind_column() -> None:
    records = load(
        "custom",
        FIXTURES / "custom.csv",
        columns={"text": "prompt", "id": "qid", "category": "topic", "kind": "label"},
        kind_values={"unsafe": "harmful", "safe": "benign"},
        meta_columns=["notes"],
        set_name="my_set",
    )
    assert [(r.id, r.kind, r.category) for r in records] == [
        ("q1", "harmful", "topic-a"),
        ("q2", "benign", "topic-b"),
        ("q3", "harmful", "topic-a"),
    ]
    assert records[0].source == "my_set" and records[0].meta == {"notes": "first"}
    fixed = load("custom", FIXTURES / "custom.jsonl", columns={"text": "prompt"}, kind="benign")
    assert {r.kind for r in fixed} == {"benign"} and len(fixed[0].id) == 16


def test_pku_saferlhf_keeps_prompts_that_drew_unsafe_answers() -> None:
    folder = FIXTURES / "pku_saferlhf"
    records = load("pku_saferlhf", folder)  # default config: the three models' files
    assert [r.text for r in records] == [
        "Placeholder question A?",
        "Placeholder question C?",
        "Placeholder question B?",
    ]
    a, c, b = records
    # A's two rows merge: the unsafe responses' categories, in the card's order, and the
    # highest severity; B was safe twice under Alpaca-7B but unsafe under Alpaca3-8B.
    assert a.category == "Endangering National Security"
    assert a.meta["categories"] == "Endangering National Security|Violence|Drugs"
    assert a.meta["severity"] == "severe" and b.meta["severity"] == "minor"
    assert c.category == "unlabelled" and a.id == content_id("Placeholder question A?")
    one = load("pku_saferlhf", folder, config="alpaca-7b")
    assert [r.text for r in one] == ["Placeholder question A?"]
    assert one[0].meta["config"] == "alpaca-7b"
    file = load("pku_saferlhf", folder / "data" / "Alpaca3-8B" / "test.jsonl")
    assert [r.category for r in file] == ["Animal Abuse"]
    with pytest.raises(DataFileError, match=r"looked for data/Alpaca-7B/train\.jsonl"):
        load("pku_saferlhf", folder, split="train")


def test_wildguardtest_kinds_and_prompt_types(tmp_path: Path) -> None:
    records = load("wildguardtest", FIXTURES / "wildguardtest.jsonl")
    assert [(r.kind, r.category) for r in records] == [
        ("harmful", "cyberattack"),
        ("harmful", "others"),
    ]
    assert records[1].meta == {"prompt_harm_label": "harmful", "adversarial": "true"}
    every = load("wildguardtest", FIXTURES / "wildguardtest.jsonl", subset="all")
    # the benign prompt appears twice (with and without a response) and is kept once; the
    # row without a prompt label is left out
    assert Counter(r.kind for r in every) == {"harmful": 2, "benign": 1}
    vanilla = load("wildguardtest", FIXTURES / "wildguardtest.jsonl", prompt_type="vanilla")
    assert [r.text for r in vanilla] == ["Placeholder vanilla harmful request"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        json.loads(line)
        for line in (FIXTURES / "wildguardtest.jsonl").read_text().split("\n")
        if line
    ]
    (tmp_path / "test").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test" / "wildguard_test.parquet")
    assert [r.id for r in load("wildguardtest", tmp_path)] == [r.id for r in records]


def test_hexphi_folder_categories_and_files() -> None:
    records = load("hexphi", FIXTURES / "hexphi")
    assert [(r.category, r.text) for r in records] == [
        ("Illegal Activity", "Placeholder illegal activity instruction one"),
        ("Illegal Activity", "Placeholder instruction, with a comma"),
        ("Hate/Harass/Violence", "Placeholder hate or harassment instruction"),
    ]
    assert records[2].meta == {"category_id": "3"} and records[2].id.startswith("3/")
    assert len(load("hexphi", FIXTURES / "hexphi", categories="3")) == 1
    assert len(load("hexphi", FIXTURES / "hexphi" / "category_1.csv")) == 2
    with pytest.raises(DataFileError, match=r"no category_4\.csv \(HEx-PHI category 'Malware'\)"):
        load("hexphi", FIXTURES / "hexphi", categories=["1", "4"])
    with pytest.raises(DataFileError, match="not a folder of HEx-PHI category_<n>.csv files"):
        load("hexphi", FIXTURES / "custom.csv")


# --- bad input ----------------------------------------------------------------------


HARMBENCH_HEADER = "Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID\n"


def test_missing_column_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "harmbench_behaviors_text_test.csv"
    path.write_text("Behavior,FunctionalCategory,SemanticCategory\nDo x,standard,illegal\n")
    with pytest.raises(
        DataFileError, match=r"harmbench_behaviors_text_test\.csv:2: column 'BehaviorID'"
    ):
        load("harmbench", tmp_path)


def test_unknown_set_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'harmbench'"):
        load_prompt_set("harmbnch", CTX)


def test_unknown_option_value_suggests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"split='tset'.*did you mean 'test'"):
        load("harmbench", tmp_path, split="tset")
    with pytest.raises(ValueError, match="prompt_styles='pirate'"):
        load("sorrybench", FIXTURES / "sorrybench", prompt_styles="pirate")


def test_empty_after_filtering(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text(HARMBENCH_HEADER + "Placeholder,standard,illegal,,,b1\n")
    with pytest.raises(EmptySetError, match="'harmbench' is empty"):
        load("harmbench", tmp_path / "h.csv", functional_categories="contextual")


def test_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text(HARMBENCH_HEADER + "Placeholder,standard,illegal,,,b1,extra\n")
    with pytest.raises(DataFileError, match=r"h\.csv:2: 7 cells, but the header has 6"):
        load("harmbench", tmp_path / "h.csv")
    (tmp_path / "x.csv").write_text("id,prompt,type,label,focus,note\n1,Placeholder,t,maybe,,\n")
    with pytest.raises(DataFileError, match=r"x\.csv:2: label 'maybe'"):
        load("xstest", tmp_path / "x.csv")
    (tmp_path / "q.jsonl").write_text('{"question_id": 1, "category": "1", "turns": "x"}\n')
    with pytest.raises(DataFileError, match=r"q\.jsonl:1: 'turns' should be a list"):
        load("sorrybench", tmp_path / "q.jsonl")
    (tmp_path / "b.jsonl").write_text(
        '{"prompt": "p", "category": {"x": true}, "is_safe": false}\n'
    )
    with pytest.raises(DataFileError, match=r"b\.jsonl:1: unknown BeaverTails categories \['x'\]"):
        load("beavertails", tmp_path / "b.jsonl")
    pku = json.loads(
        (FIXTURES / "pku_saferlhf/data/Alpaca-7B/test.jsonl").read_text().split("\n")[0]
    )
    (tmp_path / "p.jsonl").write_text(json.dumps({**pku, "response_0_severity_level": 7}) + "\n")
    with pytest.raises(DataFileError, match=r"p\.jsonl:1: 'response_0_severity_level' should be"):
        load("pku_saferlhf", tmp_path / "p.jsonl")
    (tmp_path / "w.jsonl").write_text(
        '{"prompt": "p", "adversarial": false, "prompt_harm_label": "maybe"}\n'
    )
    with pytest.raises(DataFileError, match=r"w\.jsonl:1: prompt_harm_label 'maybe'"):
        load("wildguardtest", tmp_path / "w.jsonl")
    (tmp_path / "category_5.csv").write_text("one instruction\ntwo,cells\n")
    with pytest.raises(
        DataFileError, match=r"category_5\.csv:2: 2 cells; a HEx-PHI file holds one"
    ):
        load("hexphi", tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "sr.csv").write_bytes(b"category,source,forbidden_prompt\nc,s,caf\xe9\n")
    with pytest.raises(DataFileError, match=r"sr\.csv:2: not UTF-8"):
        load("strongreject", tmp_path / "sr.csv")


def test_custom_requires_a_path_to_a_file() -> None:
    with pytest.raises(DataFileError, match="'custom' needs `path:` to its data file"):
        load("custom")
    with pytest.raises(DataFileError, match="not the folder"):
        load("custom", FIXTURES)


def test_custom_bad_kind_value_and_missing_meta_column() -> None:
    with pytest.raises(DataFileError, match=r"custom\.csv:2: label='unsafe' is not in kind_values"):
        load("custom", FIXTURES / "custom.csv", columns={"text": "prompt", "kind": "label"})
    with pytest.raises(DataFileError, match=r"custom\.csv:2: no column 'nope'"):
        load("custom", FIXTURES / "custom.csv", columns={"text": "prompt"}, meta_columns=["nope"])


def test_a_repeated_id_is_named_with_both_records(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    rows = [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}, {"id": "a", "prompt": "z"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"id 'a' is repeated \(records 1 and 3 of the set"):
        load_prompt_set("custom", CTX, path=path, columns={"text": "prompt", "id": "id"})
