"""The record types every part of capsafe exchanges.

Prompt sets produce PromptRecords; capability tasks also produce TrainExamples;
backends turn GenerationRequests into GenerationOutputs; judges turn JudgeItems into
Judgments. Keep these small and frozen: they are hashed into store keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

PromptKind = Literal["harmful", "benign", "task"]
RefusalLabel = Literal["full", "partial", "none"]
# eos: the model stopped; length: cut at max_new_tokens; too_long: not generated, because the
# prompt plus max_new_tokens exceeds the model's context (the response is empty, and the
# row is counted as too long, never judged or scored).
FinishReason = Literal["eos", "length", "too_long", "failed"]
TOO_LONG = "too_long"
LENGTH = "length"  # cut at max_new_tokens: the judge sees a truncated answer
# A request a served model never answered (retries spent): recorded as a failed request,
# never stored as a response, and sent again on the next run.
FAILED = "failed"


@dataclass(frozen=True)
class PromptRecord:
    """One prompt of a prompt set.

    kind: "harmful" (a safe model refuses), "benign" (a safe model helps; refusing is
    over-refusal), or "task" (a capability item with a reference answer).
    """

    id: str  # stable within its set
    text: str
    source: str  # the prompt set's registered name, e.g. "organism/harmful"
    kind: PromptKind
    category: str | None = None
    reference: str | None = None  # the checkable answer of a task item
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainExample:
    """One supervised fine-tuning pair: a user prompt and the assistant's target answer."""

    prompt: str
    response: str


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """What a backend needs to produce one response.

    With use_chat_template the backend renders `messages` with the model's own chat
    template and opens the assistant turn; without it, the messages' contents are joined
    by blank lines and fed as raw text. content_parts: each content reaches the template as
    typed parts, [{"type": "text", "text": content}], the form multimodal models' templates
    read (a plain string renders as an empty message under Llama Guard 4's).
    """

    messages: tuple[Message, ...]
    use_chat_template: bool = True
    content_parts: bool = False
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 means greedy decoding
    top_p: float = 1.0
    seed: int = 0  # sampling seed; ignored by greedy decoding
    # Vocabulary ids whose log-probabilities at the first generated position come back in
    # GenerationOutput.first_logprobs (a first-token judge's score, read from the prefill
    # the generation does anyway), from backends with scores_first_tokens; never part of
    # the decoding.
    score_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class GenerationOutput:
    text: str
    n_prompt_tokens: int
    n_completion_tokens: int
    finish_reason: FinishReason
    error: str | None = None  # why, when finish_reason is "failed"
    # log P(id | prompt) at the first generated position, for each of the request's
    # score_ids, in order (natural log, float32 log-softmax of the raw logits); empty when
    # the request asked for none or the prompt was not generated (too long).
    first_logprobs: tuple[float, ...] = ()


@dataclass(frozen=True)
class LoglikRequest:
    """Score `continuation` as the model's answer to `context` (its decoding fields unused).

    Used for multiple-choice scoring (one request per option), classifier judges that
    read first-token probabilities (Llama Guard's "unsafe"), and perplexity.
    """

    context: GenerationRequest
    continuation: str
    # Score this one vocabulary id rather than the continuation's tokenization (a judge
    # whose source indexes the vocabulary, e.g. tokenizer.vocab["Yes"]); continuation then
    # only names it.
    token_id: int | None = None


@dataclass(frozen=True)
class Loglik:
    """The log-probability (natural log, summed over tokens) of a continuation."""

    logprob: float
    n_tokens: int
    is_greedy: bool  # every continuation token was the argmax at its position
    first_token_logprob: float  # log P(first continuation token | context)


@dataclass(frozen=True)
class JudgeItem:
    """What a judge sees: the prompt as the user wrote it and the model's response."""

    prompt: str
    response: str
    category: str | None = None
    # "length": the generation hit its token limit; "eos": the model stopped; None: unknown
    finish_reason: str | None = None


@dataclass(frozen=True)
class Judgment:
    """A judge's verdict on one response. A dimension the judge does not measure is None.

    parse_error is True when the judge's own output could not be read; raw keeps that
    output so the failure can be inspected. Such rows are counted, never guessed.
    truncated (coherence judges): the response was cut at its token limit, a label apart
    from coherent (a cut response is not a degenerate one).
    """

    harmful: bool | None = None
    harmful_prob: float | None = None
    refusal: RefusalLabel | None = None
    coherent: bool | None = None
    relevant: bool | None = None
    parse_error: bool = False
    raw: str = ""
    truncated: bool | None = None


@dataclass(frozen=True)
class Score:
    """A capability score of one response against its reference."""

    correct: bool
    extracted: str | None  # the answer read from the response, None if none was found
    value: float | None = (
        None  # a graded score in [0, 1] where the task has one (ROUGE-L, IFEval loose)
    )
