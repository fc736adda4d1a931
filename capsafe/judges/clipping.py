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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from capsafe.judges.classifier import ModelJudge, ModelJudgeSpec, clip_tokens
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
