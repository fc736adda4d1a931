"""Model judges that break chat markers in the judged response and clip it to N tokens of
the judge's own tokenizer, the way the judge's source clips it, before building the prompt.

HarmBench's classifiers and StrongREJECT's fine-tuned scorer read at most 512 tokens of a
response, each source in its own way (see classifier.clip_tokens):

- HarmBench (evaluate_completions.py): keep the start, decode skipping special tokens;
- StrongREJECT (strong_reject/evaluate.py, strongreject_finetuned): the tokenizer truncates
  from the left, so the end is kept, and decodes without skipping special tokens, so the
  response it shows the scorer begins with the tokenizer's BOS text ("<bos>").

Markers are escaped first, so the budget holds for the text the judge reads and the only
special token a clipped response can carry is the one the source's round trip adds.

    judge = ClippedModelJudge(spec, "cais/HarmBench-Llama-2-13b-cls", max_tokens=512)

ContextFitJudge is for a judge model whose context is smaller than its inputs (capsafe's
organism guard reads 512 positions): the prompt keeps its end and the response its start,
each cut so the whole input and the verdict fit, the way HarmBench's classifiers keep a
response's start within their window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from capsafe.judges.classifier import ModelJudge, ModelJudgeSpec, _ids, clip_tokens
from capsafe.judges.injection import escape_markers
from capsafe.records import JudgeItem, Judgment


class ClippedModelJudge(ModelJudge):
    def __init__(
        self,
        spec: ModelJudgeSpec,
        model: str,
        *,
        max_tokens: int | None = 512,
        keep: str = "start",
        skip_special: bool = True,
        escape: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(spec, model, **kwargs)
        self.max_tokens, self.escape = max_tokens, escape
        self.keep, self.skip_special = keep, skip_special

    def prepare(self, item: JudgeItem) -> JudgeItem:
        response = escape_markers(item.response) if self.escape else item.response
        if self.max_tokens is not None:
            response = clip_tokens(
                self.tokenizer, response, self.max_tokens, self.keep, self.skip_special
            )
        return replace(item, response=response)

    def judge(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        return super().judge([self.prepare(i) for i in items])


class ContextFitJudge(ModelJudge):
    def __init__(self, spec: ModelJudgeSpec, model: str, *, context: int, **kwargs: Any) -> None:
        super().__init__(spec, model, **kwargs)
        self.context = context
        # Clipping changes what the judge reads of long inputs, so its verdicts on them.
        self.version = f"{spec.version}+fit{context}"
        self._fixed: int | None = None

    def fixed_tokens(self) -> int:
        """Tokens of the judge's input with an empty prompt and response (its template)."""
        if self._fixed is None:
            given = self.spec.build(JudgeItem("", ""))
            tok = self.tokenizer
            if given.chat_template:
                chat = [{"role": m.role, "content": m.content} for m in given.messages]
                ids = tok.apply_chat_template(chat, tokenize=True, add_generation_prompt=True)
            else:
                ids = tok(given.messages[0].content)["input_ids"]
            self._fixed = len(ids)
        return self._fixed

    def prepare(self, item: JudgeItem) -> JudgeItem:
        tok = self.tokenizer
        # Texts are counted apart from the template, so a few tokens are kept in reserve
        # for merges across the seams and the special tokens clip_tokens adds.
        room = self.context - self.spec.max_new_tokens - self.fixed_tokens() - 8
        n_prompt, n_response = len(_ids(tok, item.prompt)), len(_ids(tok, item.response))
        if n_prompt + n_response <= room:
            return item
        prompt_room = min(n_prompt, max(room // 2, room - n_response))
        prompt, response = item.prompt, item.response
        if n_prompt > prompt_room:
            prompt = clip_tokens(tok, prompt, prompt_room, keep="end")
        if n_response > room - prompt_room:
            response = clip_tokens(tok, response, room - prompt_room, keep="start")
        return replace(item, prompt=prompt, response=response)

    def judge(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        return super().judge([self.prepare(i) for i in items])
