"""IFEval: every instruction check on canned responses (one that follows, one that does
not), the real prompt file read in place, and scoring.

pytest tests/test_ifeval.py -q
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from capsafe.data import TASKS, DataContext
from capsafe.data.files import DataFileError
from capsafe.data.tasks.ifeval_checks import CHECKS, UnknownInstructionError, run_check
from capsafe.data.tasks.ifeval_text import count_sentences, split_sentences

REPO = Path(__file__).resolve().parents[1]
CTX = DataContext(organism_dir=REPO / ".capsafe" / "organism")
EN = "This is a plain English sentence about the weather today and tomorrow."

# instruction id -> (kwargs, a response that follows it, one that does not)
CASES = {
    "change_case:capital_word_frequency": (
        {"capital_frequency": 2, "capital_relation": "at least"},
        "The NASA and ESA teams met.",
        "The Nasa team met.",
    ),
    "change_case:english_capital": ({}, EN.upper(), EN),
    "change_case:english_lowercase": ({}, EN.lower(), EN),
    "combination:repeat_prompt": (
        {"prompt_to_repeat": "Write a poem."},
        "write a poem. Roses are red.",
        "Roses are red.",
    ),
    "combination:two_responses": ({}, "First.\n******\nSecond.", "First.\n******\nFirst."),
    "detectable_content:number_placeholders": (
        {"num_placeholders": 2},
        "Dear [name], at [address].",
        "Dear [name].",
    ),
    "detectable_content:postscript": (
        {"postscript_marker": "P.S."},
        "Hello.\n\nP.S. See you.",
        "Hello. See you.",
    ),
    "detectable_format:constrained_response": ({}, "My answer is maybe.", "Maybe."),
    "detectable_format:json_format": ({}, '```json\n{"a": 1}\n```', "a: 1"),
    "detectable_format:multiple_sections": (
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\nIntro.\nSECTION 2\nBody.",
        "SECTION 1\nIntro only.",
    ),
    "detectable_format:number_bullet_lists": (
        {"num_bullets": 2},
        "* one\n* two",
        "* one\n* two\n- three",
    ),
    "detectable_format:number_highlighted_sections": (
        {"num_highlights": 2},
        "*first* and **second**",
        "*first* and ** **",
    ),
    "detectable_format:title": ({}, "<<My Poem>>\nRoses.", "My Poem\nRoses."),
    "keywords:existence": ({"keywords": ["cat", "dog"]}, "A Cat and a dog.", "A cat alone."),
    "keywords:forbidden_words": ({"forbidden_words": ["bad"]}, "A badge.", "Not BAD at all."),
    "keywords:frequency": (
        {"keyword": "go", "frequency": 2, "relation": "less than"},
        "Go now.",
        "Go, go!",
    ),
    "keywords:letter_frequency": (
        {"letter": "z", "let_frequency": 3, "let_relation": "at least"},
        "Zigzag zoo",
        "zoo",
    ),
    "language:response_language": (
        {"language": "de"},
        "Das ist ein kurzer deutscher Satz über das Wetter heute und morgen.",
        EN,
    ),
    "length_constraints:nth_paragraph_first_word": (
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        'First part.\n\n"Then, second part.',
        "First part.\n\nAfter that, second part.",
    ),
    "length_constraints:number_paragraphs": (
        {"num_paragraphs": 2},
        "One.\n***\nTwo.",
        "One.\n***\n***\nTwo.",
    ),
    "length_constraints:number_sentences": (
        {"num_sentences": 3, "relation": "less than"},
        "One. Two!",
        "One. Two! Three?",
    ),
    "length_constraints:number_words": (
        {"num_words": 5, "relation": "at least"},
        "one two three four five",
        "one two three four",
    ),
    "punctuation:no_comma": ({}, "No commas here.", "Yes, one."),
    "startend:end_checker": (
        {"end_phrase": "Any other questions?"},
        'Done. Any other questions?"',
        "Any other questions? Done.",
    ),
    "startend:quotation": ({}, '  "All quoted."  ', '"Half quoted.'),
}


@pytest.mark.parametrize("instruction", sorted(CASES))
def test_each_check_passes_and_fails(instruction):
    kwargs, follows, breaks = CASES[instruction]
    assert run_check(instruction, follows, kwargs) is True
    assert run_check(instruction, breaks, kwargs) is False


@pytest.fixture(scope="session")
def ifeval_dir() -> Path:
    root = Path(os.environ.get("CAPSAFE_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
    if not (root / "ifeval").is_dir():
        pytest.skip(f"shared datasets not found at {root} (set CAPSAFE_SHARED_DATASETS)")
    return root / "ifeval"


def test_every_instruction_in_the_file_has_a_tested_check(ifeval_dir):
    used = set()
    for line in (ifeval_dir / "input_data.jsonl").read_text().splitlines():
        used.update(json.loads(line)["instruction_id_list"])
    assert len(used) == 25
    assert used <= set(CHECKS) and used <= set(CASES)


def test_real_prompts_load_and_score(ifeval_dir):
    task = TASKS.create("ifeval", ctx=CTX, path=ifeval_dir)
    records = task.test_prompts()
    assert len(records) == 541 and len({r.id for r in records}) == 541
    first = records[0]
    assert first.id == "ifeval-1000" and "Raymond_III" in first.text
    # Key 1000 asks for no commas, 3 highlighted sections and at least 300 words.
    body = " ".join(["word"] * 300) + " *one* *two* *three*"
    s = task.score(body, first)
    assert s.correct and s.value == 1.0
    s = task.score(body.replace("word word", "word, word", 1), first)
    assert not s.correct and s.value == pytest.approx(2 / 3)
    assert json.loads(s.extracted)["punctuation:no_comma"] is False


def test_repeated_instruction_ids_are_scored_separately(ifeval_dir):
    task = TASKS.create("ifeval", ctx=CTX, path=ifeval_dir)
    record = next(r for r in task.test_prompts() if r.id == "ifeval-1040")
    spec = json.loads(record.reference)
    results = json.loads(task.score("text", record).extracted)
    assert len(results) == len(spec["instruction_id_list"])


def test_loose_accepts_a_chatty_first_line(tmp_path):
    row = {
        "key": 7,
        "prompt": "Wrap it in quotes.",
        "instruction_id_list": ["startend:quotation"],
        "kwargs": [{}],
    }
    (tmp_path / "input_data.jsonl").write_text(json.dumps(row) + "\n")
    response = 'Sure, here it is:\n"Quoted."'
    strict = TASKS.create("ifeval", ctx=CTX, path=tmp_path)
    loose = TASKS.create("ifeval", ctx=CTX, path=tmp_path, loose=True)
    record = strict.test_prompts()[0]
    assert not strict.score(response, record).correct
    assert loose.score(response, record).correct and loose.version != strict.version


def test_bad_rows_are_clear_errors(tmp_path):
    path = tmp_path / "input_data.jsonl"
    good = {"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"]}
    rows = [
        {**good, "kwargs": [{}]},
        {**good, "instruction_id_list": ["made:up"], "kwargs": [{}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    task = TASKS.create("ifeval", ctx=CTX, path=path)
    with pytest.raises(DataFileError, match=r"input_data.jsonl:2: unknown IFEval instruction"):
        task.test_prompts()
    rows[1] = {**good, "instruction_id_list": ["keywords:existence"], "kwargs": [{}]}
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataFileError, match=r":2: instruction 'keywords:existence': bad kwargs"):
        task.test_prompts()
    rows[1] = {**good, "kwargs": [{}, {}]}
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataFileError, match=r":2: kwargs should be a list with one dict"):
        task.test_prompts()
    with pytest.raises(UnknownInstructionError, match="unknown IFEval instruction"):
        run_check("nope", "text", {})
    with pytest.raises(ValueError, match="relation must be"):
        run_check("length_constraints:number_words", "a", {"num_words": 1, "relation": "most"})


def test_sentences():
    assert count_sentences("Dr. Smith paid $3.50. He left! Why?") == 3
    assert split_sentences("The U.S.A. is big. Yes.") == ["The U.S.A. is big.", "Yes."]
    assert count_sentences("Wait... what? Fine.") == 2
    assert count_sentences("We met in the U.S. It rained. See www.example.com now.") == 3


def test_list_markers_before_lower_case_end_no_sentence():
    # As NLTK's Punkt (the official count_sentences) splits them: a number's period breaks
    # only before a capital, so "1. drink water" is one sentence with its marker.
    assert count_sentences("Tips:\n1. drink water\n2. sleep well\n3. eat greens") == 1
    assert split_sentences("Tips:\n1. Drink water.\n2. Sleep.") == [
        "Tips: 1.",
        "Drink water.",
        "2.",
        "Sleep.",
    ]
    assert count_sentences("I have 3. you have 4.") == 1
