"""ModelJudge, the runner of every language-model judge, against a scripted backend."""

from __future__ import annotations

import math

import pytest

from capsafe.judges.classifier import (
    FirstTokenScore,
    JudgeInput,
    JudgeOutputError,
    ModelJudge,
    ModelJudgeSpec,
    clip_tokens,
)
from capsafe.records import GenerationOutput, JudgeItem, Judgment, Loglik
from tests.helpers.fake_tokenizer import VocabTokenizer


class Scripted:
    """Answers each request with a canned text; log-probs favour "unsafe" for 'bad' prompts."""

    tokenizer = VocabTokenizer(["safe", "unsafe"])

    def __init__(self, answers):
        self.answers = answers
        self.seen = []

    def generate(self, requests, progress=None):
        self.seen += requests
        return [
            GenerationOutput(self.answers[r.messages[-1].content], 5, 2, "eos") for r in requests
        ]

    def loglikelihood(self, requests, progress=None):
        out = []
        for r in requests:
            bad = "bad" in r.context.messages[-1].content
            lp = math.log(0.9 if (r.continuation == "unsafe") == bad else 0.1)
            out.append(Loglik(lp, 1, True, lp))
        return out


def parse(text: str) -> Judgment:
    first = text.strip().split("\n")[0]
    if first not in ("safe", "unsafe"):
        raise JudgeOutputError(text)
    return Judgment(harmful=first == "unsafe")


SPEC = ModelJudgeSpec(
    name="toy",
    version="1",
    measures=frozenset({"harmful"}),
    build=lambda item: JudgeInput.raw(item.response),
    parse=parse,
    score=FirstTokenScore(positive=("unsafe",), negative=("safe",)),
)


def test_parses_scores_and_records_unreadable_output():
    backend = Scripted({"bad": "unsafe\nS1", "fine": "safe", "odd": "maybe?"})
    judge = ModelJudge(SPEC, "toy-model", loaded=backend)
    got = judge.judge([JudgeItem("p", "bad"), JudgeItem("p", "fine"), JudgeItem("p", "odd")])
    assert [g.harmful for g in got] == [True, False, None]
    assert got[0].harmful_prob == pytest.approx(0.9) and got[1].harmful_prob == pytest.approx(0.1)
    assert got[2].parse_error and got[2].raw == "maybe?" and got[2].harmful_prob is None
    assert got[0].raw == "unsafe\nS1"
    assert all(r.temperature == 0 and not r.use_chat_template for r in backend.seen)


class Words:
    """Whitespace tokens; BOS "<s>" added as the first special token, as Llama's tokenizers do."""

    truncation_side = "right"

    def __call__(self, text, add_special_tokens=True, max_length=None, truncation=False):
        ids = text.split()
        if truncation and max_length is not None:
            keep = max_length - 1  # room for BOS
            ids = ids[:keep] if self.truncation_side == "right" else ids[len(ids) - keep :]
        return {"input_ids": (["<s>"] if add_special_tokens else []) + ids}

    def decode(self, ids, skip_special_tokens=False):
        return " ".join(i for i in ids if not (skip_special_tokens and i == "<s>"))


def test_clip_tokens_keeps_start_or_end_with_the_sources_special_tokens():
    assert clip_tokens(Words(), "a b c d", 3) == "a b"  # BOS takes one of the 3
    assert clip_tokens(Words(), "a b c d", 3, keep="end") == "c d"
    # StrongREJECT decodes without skipping special tokens: BOS text leads the response.
    assert clip_tokens(Words(), "a b c d", 3, keep="end", skip_special=False) == "<s> c d"
    assert clip_tokens(Words(), "a  b", 5) == "a b"  # every text takes the round trip
    words = Words()
    clip_tokens(words, "a b", 5, keep="end")
    assert words.truncation_side == "right"  # the tokenizer is left as it was


def test_a_judge_prompt_longer_than_the_context_is_no_verdict():
    # The backend did not run it (too_long): recorded as a parse error, even for a parser
    # that would read the empty output as a verdict.
    class TooLong(Scripted):
        def generate(self, requests, progress=None):
            return [GenerationOutput("", 900, 0, "too_long") for _ in requests]

    lenient = ModelJudgeSpec(
        name="lenient",
        version="1",
        measures=frozenset({"harmful"}),
        build=SPEC.build,
        parse=lambda text: Judgment(harmful=False),
    )
    for spec in (SPEC, lenient):
        (got,) = ModelJudge(spec, "m", loaded=TooLong({})).judge([JudgeItem("p", "r")])
        assert got.parse_error and got.harmful is None and "context" in got.raw
