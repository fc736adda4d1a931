"""Prompt formats: how a prompt record becomes a generation request.

A format decides whether the model's chat template is used and which system prompt (if
any) precedes the user's prompt. Formats are a factor of the experiment: each named
format is generated, judged and analysed separately.
"""

from __future__ import annotations

from capsafe.config import DecodingSpec, FormatSpec
from capsafe.records import GenerationRequest, Message, PromptRecord


def build_request(
    record: PromptRecord, fmt: FormatSpec, decoding: DecodingSpec, sample_seed: int
) -> GenerationRequest:
    messages: list[Message] = []
    if fmt.system_prompt:
        messages.append(Message("system", fmt.system_prompt))
    messages.append(Message("user", record.text))
    return GenerationRequest(
        messages=tuple(messages),
        use_chat_template=fmt.chat_template,
        max_new_tokens=decoding.max_new_tokens,
        temperature=decoding.temperature,
        top_p=decoding.top_p,
        seed=sample_seed,
    )
