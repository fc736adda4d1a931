"""The safety sets' hub branch, offline. Without `path:` each set asks the hub for its
dataset at its pinned revision. A fake `datasets.load_dataset` (and `hf_hub_download`)
serves small files in each hub dataset's own schema
(tests/data/safety/hub/<owner>__<name>/<config>/<split>.jsonl) and checks the revision;
nothing else stands in for the real code. An unreachable hub gives one line that names the
set and says to pass `path:`."""

from __future__ import annotations

from pathlib import Path

import pytest

from capsafe.data import DataContext, EmptySetError, load_prompt_set
from capsafe.data import files as data_files
from capsafe.data.files import DataFileError, read_rows
from capsafe.data.safety import (
    advbench,
    harmbench,
    jailbreakbench,
    pku_saferlhf,
    simplesafetytests,
    strongreject,
    wildguardtest,
    xstest,
)
from capsafe.data.safety import toxigen as toxigen_module
from capsafe.data.safety.common import content_id
from capsafe.errors import UserError
from capsafe.records import PromptRecord

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data" / "safety"
HUB = FIXTURES / "hub"
CTX = DataContext(organism_dir=REPO / ".capsafe" / "organism")  # unused by these sets
SETS = (advbench, harmbench, pku_saferlhf, simplesafetytests, strongreject, wildguardtest, xstest)
PINS = {m.HUB.dataset: m.HUB.revision for m in SETS}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, str]]:
    """Serve HUB's files as the hub; each call is recorded as (dataset, config, split)."""
    import datasets

    calls = []

    def load_dataset(dataset, config=None, *, split, revision=None, data_files=None):
        assert revision == PINS[dataset], f"{dataset}: revision {revision} is not the pin"
        calls.append((dataset, config, split))
        file = HUB / dataset.replace("/", "__") / (config or "default") / f"{split}.jsonl"
        return [row.fields for row in read_rows(file)]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def load(name: str, **args: object) -> list[PromptRecord]:
    return load_prompt_set(name, CTX, **args)


def test_hub_sources_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict]] = []

    def fake_hub(dataset: str, **kw: object) -> list:
        calls.append((dataset, kw))
        return []

    monkeypatch.setattr(data_files, "hub_rows", fake_hub)
    monkeypatch.setattr(toxigen_module, "hub_rows", fake_hub)
    for name, args in [
        ("jailbreakbench", {"subset": "all"}),
        ("sorrybench", {"prompt_styles": ["base", "slang"]}),
        ("beavertails", {}),
        ("airbench", {"region": "eu_mandatory"}),
        ("donotanswer", {}),
        ("toxigen", {"groups": "women", "labels": "neutral"}),
        ("harmbench", {"functional_categories": ["standard", "copyright"]}),
        ("xstest", {}),
        ("strongreject", {}),
        ("advbench", {}),
        ("simplesafetytests", {}),
        ("pku_saferlhf", {}),
        ("wildguardtest", {}),
    ]:
        with pytest.raises(EmptySetError):
            load(name, **args)

    def hub(split: str, config: str | None = None, revision: str | None = None, **kw: object):
        return {"split": split, "config": config, "revision": revision, "data_files": None,
                "gated": False, **kw}  # fmt: skip

    jbb = jailbreakbench.HUB.revision
    assert calls == [
        ("JailbreakBench/JBB-Behaviors", hub("harmful", "behaviors", jbb)),
        ("JailbreakBench/JBB-Behaviors", hub("benign", "behaviors", jbb)),
        ("sorry-bench/sorry-bench-202503", hub("train", data_files="question.jsonl")),
        ("sorry-bench/sorry-bench-202503", hub("train", data_files="question_slang.jsonl")),
        ("PKU-Alignment/BeaverTails", hub("30k_test")),
        ("stanford-crfm/air-bench-2024", hub("test", "eu_mandatory")),
        ("LibrAI/do-not-answer", hub("train")),
        ("toxigen/toxigen-data", {"config": "prompts", "split": "neutral_women_1k"}),
        # the sets read through common.set_rows, each at its pinned revision
        *[
            (m.HUB.dataset, hub(split, config, m.HUB.revision, gated=m.HUB.gated))
            for m, config, split in [
                (harmbench, "standard", "train"),
                (harmbench, "copyright", "train"),
                (xstest, None, "test"),
                (strongreject, None, "train"),
                (advbench, None, "train"),
                (simplesafetytests, None, "test"),
                (pku_saferlhf, "default", "test"),
                (wildguardtest, "wildguardtest", "test"),
            ]
        ],
    ]  # fmt: skip


def test_harmbench_from_the_hub(hub: list) -> None:
    records = load("harmbench")
    assert [c[1] for c in hub] == ["standard", "contextual", "copyright"]
    assert [r.meta["functional_category"] for r in records] == [
        "standard", "standard", "contextual", "copyright"
    ]  # fmt: skip
    standard, _, contextual, copyright_ = records
    # no BehaviorIDs on the hub: ids are digests of the prompt sent
    assert standard.id == content_id("Placeholder standard behavior A")
    assert standard.category == "illegal" and copyright_.category == "copyright"
    assert contextual.text == (
        "Placeholder context,\nover two lines\n\n---\n\nPlaceholder contextual behavior"
    )
    assert contextual.meta["behavior"] == "Placeholder contextual behavior"
    assert contextual.id == content_id(contextual.text)
    assert copyright_.meta["tags"] == "book, hash_check"
    with pytest.raises(ValueError, match="split='test' needs a local copy"):
        load("harmbench", split="test")


def test_xstest_from_the_hub(hub: list) -> None:
    records = load("xstest")
    assert [(r.kind, r.category) for r in records] == [
        ("benign", "homonyms"),
        ("harmful", "contrast_homonyms"),
    ]
    assert records[0].id == content_id(records[0].text)
    assert records[0].meta == {"label": "safe", "focus": "placeholder", "note": "violence"}
    assert [r.kind for r in load("xstest", subset="unsafe")] == ["harmful"]


def test_sets_whose_hub_and_local_ids_agree(hub: list) -> None:
    sr, adv, sst = load("strongreject"), load("advbench"), load("simplesafetytests")
    assert sr[0].id == content_id("Placeholder forbidden prompt")  # as from the CSV
    assert sr[0].category == "Non-violent crimes" and sr[0].meta == {"origin": "custom"}
    assert adv[0].id == content_id(adv[0].text)
    assert adv[0].meta["target"] == "Sure, here is a placeholder"
    assert (sst[0].id, sst[0].text, sst[0].category) == (
        "sst_001",
        "Placeholder test case?",
        "Physical harm",
    )
    assert sst[0].meta == {"request_type": "Information and advice seeking"}


def test_pku_saferlhf_and_wildguardtest_from_the_hub(hub: list) -> None:
    pku = load("pku_saferlhf", config="alpaca-7b")
    assert (pku[0].category, pku[0].meta["severity"]) == ("Cybercrime", "moderate")
    wg = load("wildguardtest", subset="all")
    assert hub[-1] == ("allenai/wildguardmix", "wildguardtest", "test")
    assert [r.kind for r in wg] == ["harmful", "harmful", "benign"]


def test_hexphi_from_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    asked = []

    def download(repo_id, filename, *, repo_type, revision=None):
        asked.append((repo_id, filename, repo_type, revision))
        return str(FIXTURES / "hexphi" / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    records = load("hexphi", categories=["1", "3"])
    assert asked == [
        ("LLM-Tuning-Safety/HEx-PHI", "category_1.csv", "dataset", None),
        ("LLM-Tuning-Safety/HEx-PHI", "category_3.csv", "dataset", None),
    ]
    assert [r.meta["category_id"] for r in records] == ["1", "1", "3"]
    with pytest.raises(ValueError, match="category 2 .* was removed from the hub"):
        load("hexphi", categories="2")


def _offline(*args: object, **kwargs: object) -> None:
    raise ConnectionError(
        "Couldn't reach 'the hub' (LocalEntryNotFoundError)\nCheck your connection.\n"
    )


@pytest.mark.parametrize(
    ("name", "dataset", "gated"),
    [
        ("harmbench", "walledai/HarmBench", True),
        ("simplesafetytests", "Bertievidgen/SimpleSafetyTests", False),
        ("wildguardtest", "allenai/wildguardmix", True),
    ],
)
def test_an_unreachable_hub_is_one_line_naming_the_set(
    monkeypatch: pytest.MonkeyPatch, name: str, dataset: str, gated: bool
) -> None:
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", _offline)
    with pytest.raises(UserError) as caught:
        load(name, where="safety.0.args")  # as the pipeline loads a set
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"safety.0.args: prompt set {name!r}: hub dataset {dataset!r}")
    assert "ConnectionError: Couldn't reach 'the hub'" in message
    assert message.endswith("pass its local copy with `path:`")
    assert ("it is gated: accept its terms" in message) is gated


def test_an_unreachable_gated_file_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _offline)
    with pytest.raises(DataFileError, match=r"'LLM-Tuning-Safety/HEx-PHI' \(file 'category_1.csv'\)"
                       r".*it is gated.*`path:`"):  # fmt: skip
        load("hexphi")
