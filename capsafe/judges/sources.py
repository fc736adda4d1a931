"""What each judge's prompt, parser and score were checked against, and what was not.

A safety number is only as good as the judge prompt behind it, so every judge says here
where its prompt comes from and how far that was verified: against the judge model's own
chat template and tokenizer (tests/test_judge_conformance.py, on the real files), against
its source's code or card text, or not at all. `capsafe list judges --verbose` prints this,
and the report's methods section names every judge it used that could not be verified.

    judge_source("shieldgemma_harassment").verified   # True: its own template was checked
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JudgeSource:
    source: str  # where the prompt, parser and score come from
    checked: str  # what capsafe's text and tokens were compared with
    verified: bool  # False: the source could not be read or compared; numbers are unchecked
    gaps: str = ""  # what is known not to be checked


SOURCES: dict[str, JudgeSource] = {
    "llama_guard_3": JudgeSource(
        source="meta-llama/Llama-Guard-3-8B and -1B chat templates; Llama Guard 3 card "
        "(P(unsafe) of the first token)",
        checked="the genuine 8B and 1B templates (huggingface.js chat-template-automap) and "
        "the Llama 3 tokenizer: text, token ids, scored token",
        verified=True,
        gaps="the 8B template's leading space token before <|begin_of_text|> is not sent",
    ),
    "llama_guard_4": JudgeSource(
        source="the model's own processor chat template, content as typed text parts "
        "(Meta's usage)",
        checked="typed parts against a parts-reading Meta template (Llama Guard 3 1B's) only",
        verified=False,
        gaps="Llama Guard 4's chat template and tokenizer were not found: its prompt, where "
        "its verdict's first token falls and its scored token are unchecked",
    ),
    "harmbench_cls": JudgeSource(
        source="HarmBench eval_utils.py LLAMA2_CLS_PROMPT and evaluate_completions.py "
        "clipping; the Mistral validation classifier's card",
        checked="two agreeing forks of eval_utils.py (the HarmBench repository was not "
        "readable) and the Llama-2 / Mistral tokenizers: token ids, scored token",
        verified=True,
        gaps="the round trip that clips a generation depends, at the generation's very "
        "start, on the transformers version's Llama tokenizer",
    ),
    "granite_guardian": JudgeSource(
        source="Granite Guardian 3.0 chat template (guardian_config) and IBM's cookbook score",
        checked="the genuine 3.0 template, every risk, as text; other versions are refused",
        verified=True,
        gaps="no Granite tokenizer was available: the yes/no tokens summed are not checked "
        "against it",
    ),
    "shieldgemma": JudgeSource(
        source="google/shieldgemma chat template with its guideline; Google's cookbook "
        "(template: cookbook)",
        checked="the genuine template, every policy, as text",
        verified=True,
        gaps="the Gemma tokenizer was not available: the prompt's token ids are not checked "
        "(vocab['Yes'] / vocab['No'] are read by id, as the source reads them)",
    ),
    "strongreject_finetuned": JudgeSource(
        source="dsbowen/strong_reject evaluate.py strongreject_finetuned and its judge template",
        checked="a fork's copy of evaluate.py and an independent copy of the template, as text",
        verified=True,
        gaps="the Gemma tokenizer and the adapter were not available: the prompt's token ids "
        "are not checked (vocab['1'..'5'] are read by id, as the reference reads them)",
    ),
    "strongreject": JudgeSource(
        source="dsbowen/strong_reject strongreject_rubric (template, system prompt, parser)",
        checked="a copy of the templates and a fork's evaluate.py, as text",
        verified=True,
    ),
    "wildguard": JudgeSource(
        source="allenai/wildguard wildguard/utils.py WILDGUARD_INPUT_FORMAT",
        checked="the genuine utils.py and the Mistral v0.3 tokenizer",
        verified=True,
    ),
    "sorrybench_judge": JudgeSource(
        source="the SORRY-Bench judge's model card template in Mistral's [INST] format",
        checked="the early Mistral-Instruct template only",
        verified=False,
        gaps="SORRY-Bench's judge code and the judge's own tokenizer_config could not be "
        "read: the prompt text and its template are unconfirmed",
    ),
    "keyword_refusal": JudgeSource(
        source="phrase lists of JailbreakBench, XSTest and GCG/AdvBench (see keyword.py)",
        checked="gcg: HarmBench's advbench_metric_test_prefixes and its matching rule",
        verified=True,
    ),
}
# Judges capsafe defines itself: there is no outside source to check them against.
OWN = {
    "coherence": "capsafe's own signals, thresholds fitted on its seed set",
    "embedding_refusal": "capsafe's own classifier on MiniLM embeddings",
    "embedding_harm": "capsafe's own classifier on MiniLM embeddings (GPTFuzz labels)",
    "llm_judge": "the user's own rubric",
}


def judge_source(name: str) -> JudgeSource | None:
    """The source of a judge by its registered or stored name (a stored name such as
    shieldgemma_harassment or granite_guardian_social_bias is read as its family's)."""
    if name in SOURCES:
        return SOURCES[name]
    family = max((k for k in SOURCES if name.startswith(k + "_")), key=len, default=None)
    return SOURCES[family] if family else None


def describe(name: str) -> list[str]:
    """Lines for `capsafe list judges --verbose`."""
    if name in OWN:
        return [f"source: {OWN[name]}"]
    found = judge_source(name)
    if found is None:
        return ["source: not recorded (UNVERIFIED)"]
    lines = [f"source: {found.source}", f"checked: {found.checked}"]
    if not found.verified:
        lines.insert(0, "UNVERIFIED: its source could not be compared; its numbers are unchecked")
    if found.gaps:
        lines.append(f"not checked: {found.gaps}")
    return lines
