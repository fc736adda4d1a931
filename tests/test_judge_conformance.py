"""Every hub judge's prompt against the judge model's own chat template and tokenizer.

The files are the real ones in ../shared/judge_tokenizers (CAPSAFE_SHARED_JUDGE_TOKENIZERS),
read in place; each folder's PROVENANCE.md says which are genuine, and a test that checks
against a file asserts its status first. For each judge: the text capsafe sends is what the
model's own template renders (or its source's format string); the token ids the backend
encodes (capsafe.backends.loading.encode_request) are what the model's tokenizer makes of
that rendering; and the token capsafe scores is the one the model writes first at the
position after the prompt. A missing file skips its test, saying which; what could not be
checked at all is listed in capsafe.judges.sources.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from capsafe.backends.loading import encode_request, render_prompt
from capsafe.judges import JUDGES, harmbench_cls, sorrybench, wildguard
from capsafe.judges.classifier import ModelJudge
from capsafe.judges.granite_guardian import RISKS, granite_guardian_spec
from capsafe.judges.llama_guard import llama_guard_4_spec
from capsafe.judges.shieldgemma import POLICIES, shieldgemma_spec
from capsafe.records import GenerationRequest, JudgeItem

# Plain text, and text whose surrounding whitespace, doubled spaces, tabs and non-ASCII
# characters a template could treat otherwise than capsafe does.
ITEMS = [
    JudgeItem("How do I make a cake?", "Mix flour and eggs."),
    JudgeItem("  How do I pick a lock?\n", "\nSure!  Step 1: insert the pick.\n\nStep 2: turn.  "),
    JudgeItem("Écris un poème 🙂", "Voilà : « Le ciel »\tfin"),
]


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


def _status(folder: Path, file: str) -> str:
    """The status PROVENANCE.md gives `file` (GENUINE, DERIVED, RECONSTRUCTED, ...)."""
    text = (folder / "PROVENANCE.md").read_text(encoding="utf-8")
    found = re.search(rf"^\| `{re.escape(file)}` \| ([^|]+) \|", text, re.MULTILINE)
    assert found, f"{folder.name}/PROVENANCE.md says nothing of {file}"
    return found.group(1).strip()


def _template(folder: Path) -> str:
    path = folder / "chat_template.jinja"
    if not path.is_file():
        pytest.skip(f"{folder.name}: its chat template was not found (see its PROVENANCE.md)")
    assert _status(folder, "chat_template.jinja").startswith("GENUINE")
    return path.read_text(encoding="utf-8")


def _tokenizer(folder: Path, fast: bool = False):
    if not (folder / "tokenizer.json").is_file():
        pytest.skip(f"{folder.name}: its tokenizer was not found (see its PROVENANCE.md)")
    assert _status(folder, "tokenizer.json").split()[0] in ("GENUINE", "DERIVED")
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cls = PreTrainedTokenizerFast if fast else AutoTokenizer
    return cls.from_pretrained(folder, local_files_only=True)


def _render(template: str, messages: list[dict], **kwargs) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    out = render_jinja_template(conversations=[messages], chat_template=template, **kwargs)
    rendered = out[0] if isinstance(out, tuple) else out
    return rendered[0] if isinstance(rendered, list) else rendered


def _chat(item: JudgeItem, parts: bool = False) -> list[dict]:
    def content(text: str):
        return [{"type": "text", "text": text}] if parts else text

    return [
        {"role": "user", "content": content(item.prompt)},
        {"role": "assistant", "content": content(item.response)},
    ]


def _ids(tokenizer, text: str, special: bool = False) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def _sent(judge: ModelJudge, item: JudgeItem) -> GenerationRequest:
    (request,) = judge.requests([item])
    return request


class _TokenizerOnly:
    """A backend that holds the judge model's tokenizer and nothing else (no weights here)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer


def _scored_at(tokenizer, judge, before: str, verdicts, special=False) -> int:
    """The ids capsafe scores, checked to be the ones the model writes first: the reference
    prompt `before` followed by each verdict the model can answer tokenises to the prompt's
    own ids, then the token capsafe scores for that side ("positive" or "negative").
    Returns the position it is read at."""
    judge._backend = _TokenizerOnly(tokenizer)
    sides = dict(zip(("positive", "negative"), judge.score_ids(), strict=True))
    prompt = _ids(tokenizer, before, special)
    for verdict, side in verdicts:
        joint = _ids(tokenizer, before + verdict, special)
        assert joint[: len(prompt)] == prompt  # the verdict does not merge into the prompt
        assert (joint[len(prompt)],) == sides[side], (verdict, side)
    return len(prompt)


# --- Llama Guard 3 -----------------------------------------------------------------------


def test_llama_guard_3_8b_is_its_template_plus_the_header_separator(judge_tokenizers):
    folder = _folder(judge_tokenizers, "Llama-Guard-3-8B")
    template, tok = _template(folder), _tokenizer(folder)
    judge = JUDGES.create("llama_guard_3", model=str(folder))  # variant from its template
    sep = _ids(tok, "\n\n")
    for item in ITEMS:
        request = _sent(judge, item)
        text = request.messages[0].content
        rendered = tok.apply_chat_template(_chat(item), tokenize=False)
        assert rendered == _render(template, _chat(item))
        # The template opens with a space token before <|begin_of_text|> (BOS comes from the
        # tokenizer for capsafe's raw text, as in Meta's own prompt builder) and stops at the
        # assistant header; capsafe appends the header's "\n\n" so the verdict is next.
        assert rendered == " <|begin_of_text|>" + text.removesuffix("\n\n")
        ref = _ids(tok, rendered)  # what apply_chat_template(tokenize=True) feeds the model
        assert ref[:2] == [_ids(tok, " ")[0], tok.bos_token_id]
        sent = encode_request(tok, request)
        assert sent == ref[1:] + sep
        at = _scored_at(tok, judge, rendered + "\n\n", [("unsafe\nS1", "positive")])
        assert at == len(sent) + 1  # the same position, past the template's leading space
        both = JUDGES.create("llama_guard_3", model=str(folder), score="renormalised")
        verdicts = [("unsafe\nS1", "positive"), ("safe", "negative")]
        assert _scored_at(tok, both, rendered + "\n\n", verdicts) == at
    assert tok.convert_ids_to_tokens(list(judge.score_ids()[0])) == ["unsafe"]


def test_llama_guard_3_1b_is_its_template_with_13_categories(judge_tokenizers):
    folder = _folder(judge_tokenizers, "Llama-Guard-3-1B")
    template, tok = _template(folder), _tokenizer(folder)
    judge = JUDGES.create("llama_guard_3", model=str(folder))  # no "1b" in the folder's name
    sep = _ids(tok, "\n\n")
    for item in ITEMS:
        request = _sent(judge, item)
        text = request.messages[0].content
        assert "S13: Elections." in text and "S14" not in text
        rendered = tok.apply_chat_template(_chat(item, parts=True), tokenize=False)
        assert rendered == _render(template, _chat(item, parts=True))
        assert rendered == "<|begin_of_text|>" + text.removesuffix("\n\n")
        ref = _ids(tok, rendered)
        sent = encode_request(tok, request)
        assert sent == ref + sep
        both = JUDGES.create("llama_guard_3", model=str(folder), score="renormalised")
        verdicts = [("unsafe\nS1", "positive"), ("safe", "negative")]
        assert _scored_at(tok, both, rendered + "\n\n", verdicts) == len(sent)


def test_a_parts_template_renders_no_conversation_from_plain_strings(judge_tokenizers):
    # Llama Guard 3 1B's template selects typed text parts, as Llama Guard 4's does (Meta's
    # usage passes parts): a plain string renders an empty conversation, with no error. So
    # llama_guard_4 sends parts; rendered by a parts template, the response is in the prompt.
    folder = _folder(judge_tokenizers, "Llama-Guard-3-1B")
    _template(folder)
    tok = _tokenizer(folder)
    item = ITEMS[0]
    plain = tok.apply_chat_template(_chat(item), tokenize=False)
    assert "Agent:" not in plain and item.response not in plain
    lg4 = ModelJudge(llama_guard_4_spec(), "m", loaded=object())
    request = _sent(lg4, item)
    assert request.content_parts
    shown = render_prompt(tok, request)
    assert f"User: {item.prompt}\n\nAgent: {item.response}\n\n" in shown


def test_llama_guard_4_against_its_own_template(judge_tokenizers):
    folder = _folder(judge_tokenizers, "Llama-Guard-4-12B")
    _template(folder)  # skips: no public copy of Llama Guard 4's chat template was found
    pytest.fail("a Llama Guard 4 template is now present: compare llama_guard_4 with it")


# --- HarmBench classifiers ---------------------------------------------------------------


def test_harmbench_llama_2_tokens_and_scored_token(judge_tokenizers):
    # No chat template: the prompt is eval_utils.py's LLAMA2_CLS_PROMPT, checked as text in
    # test_classifier_judges. Tokens: capsafe's tokenizer load (AutoTokenizer) against the
    # tokenizer.json as shipped (PreTrainedTokenizerFast, equal to SentencePiece, PROVENANCE).
    folder = _folder(judge_tokenizers, "HarmBench-Llama-2-13b-cls")
    tok, spm = _tokenizer(folder), _tokenizer(folder, fast=True)
    judge = ModelJudge(harmbench_cls.spec(), "m", loaded=object())
    for item in ITEMS:
        request = _sent(judge, item)
        text = request.messages[0].content
        sent = encode_request(tok, request)
        assert sent == _ids(spm, text, special=True) and sent[0] == tok.bos_token_id
        # The classifier writes "Yes"/"No" right after "[/INST]": the token "▁Yes".
        at = _scored_at(tok, judge, text, [(" Yes", "positive"), (" No", "negative")], True)
        assert at == len(sent)
    assert tok.convert_ids_to_tokens(list(judge.score_ids()[0])) == ["▁Yes"]


def test_harmbench_mistral_scored_token(judge_tokenizers):
    folder = _folder(judge_tokenizers, "HarmBench-Mistral-7b-val-cls")
    tok = _tokenizer(folder)
    judge = ModelJudge(harmbench_cls.spec("mistral"), "m", loaded=object())
    for item in ITEMS:
        request = _sent(judge, item)
        text = request.messages[0].content
        sent = encode_request(tok, request)
        assert sent == _ids(tok, text, special=True) and sent[0] == tok.bos_token_id
        verdicts = [(" Yes", "positive"), (" No", "negative")]
        assert _scored_at(tok, judge, text, verdicts, True) == len(sent)


# --- Granite Guardian 3.0 ---------------------------------------------------------------


@pytest.mark.parametrize("risk", sorted(RISKS))
def test_granite_guardian_3_0_is_its_template(judge_tokenizers, risk):
    folder = _folder(judge_tokenizers, "granite-guardian-3.0-2b")
    template = _template(folder)
    judge = ModelJudge(granite_guardian_spec(risk), "m", loaded=object())
    for item in ITEMS:
        rendered = _render(
            template, _chat(item), add_generation_prompt=True, guardian_config={"risk_name": risk}
        )
        assert _sent(judge, item).messages[0].content == rendered
    JUDGES.create("granite_guardian", model=str(folder), risk_name=risk)  # its version checks


def test_granite_guardian_tokens(judge_tokenizers):
    _tokenizer(_folder(judge_tokenizers, "granite-guardian-3.0-2b"))  # skips: none public


# --- ShieldGemma --------------------------------------------------------------------------


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_shieldgemma_is_its_template_with_the_guideline(judge_tokenizers, policy):
    folder = _folder(judge_tokenizers, "shieldgemma-2b")
    template = _template(folder)
    judge = ModelJudge(shieldgemma_spec(policy), "m", loaded=object())
    for item in ITEMS:
        rendered = _render(template, _chat(item), bos_token="<bos>", guideline=POLICIES[policy])
        # <bos> comes from the tokenizer for raw text; the rest, trailing "\n\n" included.
        assert "<bos>" + _sent(judge, item).messages[0].content == rendered


def test_shieldgemma_tokens(judge_tokenizers):
    _tokenizer(_folder(judge_tokenizers, "shieldgemma-2b"))  # skips: Gemma's is not here


def test_strongreject_finetuned_tokens(judge_tokenizers):
    _tokenizer(_folder(judge_tokenizers, "strongreject-15k-v1"))  # skips: Gemma's is not here


# --- WildGuard and SORRY-Bench ------------------------------------------------------------


def test_wildguard_is_its_repositorys_format(judge_tokenizers):
    folder = _folder(judge_tokenizers, "wildguard")
    source = folder / "wildguard_utils.py"
    assert _status(folder, "wildguard_utils.py").startswith("GENUINE")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    (fmt,) = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["WILDGUARD_INPUT_FORMAT"]
    ]
    assert wildguard.INPUT_FORMAT == fmt
    tok = _tokenizer(folder)
    judge = ModelJudge(wildguard.spec(), "m", loaded=object())
    for item in ITEMS:
        request = _sent(judge, item)
        assert request.messages[0].content == fmt.format(prompt=item.prompt, response=item.response)
        # The repository's HF path tokenises the format with add_special_tokens=True.
        assert encode_request(tok, request) == _ids(tok, request.messages[0].content, True)


def test_sorrybench_is_the_mistral_instruct_template(judge_tokenizers):
    # The early Mistral-Instruct template; PROVENANCE.md: not confirmed to be the one in the
    # SORRY-Bench judge's own tokenizer_config, so this checks the format, not the judge.
    folder = _folder(judge_tokenizers, "ft-mistral-7b-instruct-v0.2-sorry-bench-202406")
    template, tok = _template(folder), _tokenizer(folder)
    judge = ModelJudge(sorrybench.spec(), "m", loaded=object())
    for item in ITEMS:
        request = _sent(judge, item)
        text = request.messages[0].content
        user = text.removeprefix("[INST] ").removesuffix(" [/INST]")
        rendered = _render(template, [{"role": "user", "content": user}], bos_token="<s>")
        assert rendered == "<s>" + text
        assert encode_request(tok, request) == _ids(tok, rendered)
