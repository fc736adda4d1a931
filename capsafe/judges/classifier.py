"""Shared machinery of judges that are language models: a classifier LM (Llama Guard,
WildGuard, HarmBench's classifiers) or a chat model following a rubric.

A model judge is three small functions around a generation backend:

    prompt(item)  -> the judge model's input (a chat or a raw text, exactly as its card says)
    parse(text)   -> a Judgment from the judge model's output (parse_error when unreadable)
    score         -> optional: harmful_prob from the first output token's probabilities, as
                     the judge's source reads it (FirstTokenScore), e.g. Llama Guard 3's
                     P("unsafe"), or ShieldGemma's P("Yes") / (P("Yes") + P("No"))

`ModelJudge` runs them batched through any registered backend (transformers here, vLLM
on a GPU), loads the model on first use, and never guesses: an output `parse` cannot read
becomes a Judgment with parse_error=True and the raw text.

    judge = ModelJudge(spec, model="meta-llama/Llama-Guard-3-1B")   # or a local folder
    judge.judge([JudgeItem(prompt, response)])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from capsafe.records import (
    FAILED,
    TOO_LONG,
    GenerationRequest,
    JudgeItem,
    Judgment,
    LoglikRequest,
    Message,
)


class JudgeOutputError(ValueError):
    """The judge model's output does not have the form its card specifies."""


@dataclass(frozen=True)
class JudgeInput:
    """What is fed to the judge model: chat messages (rendered with the judge model's own
    chat template) or, with chat_template False, one raw text. content_parts: the template
    reads each message's content as typed parts ([{"type": "text", "text": ...}]), as
    multimodal judges' templates do."""

    messages: tuple[Message, ...]
    chat_template: bool = True
    content_parts: bool = False

    @classmethod
    def raw(cls, text: str) -> JudgeInput:
        return cls((Message("user", text),), chat_template=False)

    @classmethod
    def chat(cls, *messages: tuple[str, str], content_parts: bool = False) -> JudgeInput:
        return cls(
            tuple(Message(role, content) for role, content in messages),  # type: ignore[arg-type]
            content_parts=content_parts,
        )


MATCHES = ("token", "vocab", "any_case")


@dataclass(frozen=True)
class FirstTokenScore:
    """How harmful_prob is read from the judge model's first output token.

    positive, negative: the tokens whose probabilities are summed on each side;
    renormalise: harmful_prob = P(positive) / (P(positive) + P(negative)); False: P(positive)
      itself (negative unused);
    match: "token": the one token each text encodes to (checked to be one); "vocab": the
      vocabulary entry spelled as the text, as a source that indexes tokenizer.vocab[text]
      reads it; "any_case": every token whose text, stripped and lower-cased, is the word
      ("Yes", " yes", "YES", ... for "yes").
    """

    positive: tuple[str, ...]
    negative: tuple[str, ...] = ()
    renormalise: bool = True
    match: str = "token"

    def __post_init__(self) -> None:
        if self.match not in MATCHES:
            raise ValueError(f"FirstTokenScore.match must be one of {MATCHES}, got {self.match!r}")
        if not self.positive or (self.renormalise and not self.negative):
            raise ValueError(
                "FirstTokenScore needs positive tokens (and negative ones to renormalise)"
            )


@dataclass(frozen=True)
class ModelJudgeSpec:
    """What distinguishes one model judge from another."""

    name: str
    version: str
    measures: frozenset[str]
    build: Callable[[JudgeItem], JudgeInput]
    parse: Callable[[str], Judgment]  # raises JudgeOutputError on unreadable output
    max_new_tokens: int = 16
    score: FirstTokenScore | None = None  # optional: harmful_prob from the first token


class ModelJudge:
    """Runs a ModelJudgeSpec on a model through a generation backend, batched and greedy."""

    def __init__(
        self,
        spec: ModelJudgeSpec,
        model: str,
        *,
        backend: str = "transformers",
        batch_size: int = 16,
        device: str = "auto",
        backend_args: dict[str, Any] | None = None,
        loaded: Any = None,  # an already-built backend (tests, or sharing one model)
    ) -> None:
        self.spec = spec
        self.name, self.version, self.measures = spec.name, spec.version, spec.measures
        self.model = model
        self._backend_name = backend
        self._backend_args = {"batch_size": batch_size, "device": device, **(backend_args or {})}
        self._backend = loaded
        if loaded is None:  # refuse now, not once the responses are in, what would not load
            from capsafe.backends import BACKENDS

            BACKENDS.check_args(backend, None, model=model, **self._backend_args)
        self._score_ids: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from capsafe.backends import BACKENDS

            self._backend = BACKENDS.create(
                self._backend_name, model=self.model, **self._backend_args
            )
        return self._backend

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    def requests(self, items: Sequence[JudgeItem]) -> list[GenerationRequest]:
        out = []
        for item in items:
            given = self.spec.build(item)
            out.append(
                GenerationRequest(
                    messages=given.messages,
                    use_chat_template=given.chat_template,
                    content_parts=given.content_parts,
                    max_new_tokens=self.spec.max_new_tokens,
                    temperature=0.0,
                )
            )
        return out

    def judge(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        requests = self.requests(items)
        # A backend that scores first tokens reads the score from the first decoding step
        # of the judgment's own forward: one prefill per item instead of one more per id.
        fused = self.spec.score is not None and scores_first_tokens(self.backend)
        if fused:
            ids = sum(self.score_ids(), ())
            requests = [replace(r, score_ids=ids) for r in requests]
        outputs = self.backend.generate(requests)
        if failed := [o for o in outputs if o.finish_reason == FAILED]:
            # A served judge that never answered gave no verdict: stop (the batches judged
            # before are stored) rather than store a parse error the next run would keep.
            from capsafe.backends.openai_backend import EndpointError

            raise EndpointError(
                f"{self.name}: {len(failed)} of {len(outputs)} judge request(s) failed after "
                f"every retry ({failed[0].error}); what was judged before is stored, run "
                "again to judge the rest"
            )
        verdicts = [
            too_long_judgment() if o.finish_reason == TOO_LONG
            else parse_or_error(self.spec.parse, o.text)
            for o in outputs
        ]  # fmt: skip
        if self.spec.score is None:
            return verdicts
        if fused:
            logprobs = [o.first_logprobs for o in outputs]
        else:
            logprobs = first_logprobs(self.backend, requests, sum(self.score_ids(), ()))
        out = []
        for v, lps in zip(verdicts, logprobs, strict=True):
            if v.parse_error:
                out.append(v)
            elif not lps:  # a readable verdict from a prompt never run is a backend bug
                raise RuntimeError(f"{self.name}: the backend returned no first-token scores")
            else:
                out.append(replace(v, harmful_prob=self.first_token_prob(lps)))
        return out

    def score_ids(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The (positive, negative) token ids scored, resolved once on the judge's tokenizer."""
        if self._score_ids is None:
            score = self.spec.score
            if score is None:
                raise ValueError(f"{self.name} reads no first-token score")
            negative = score.negative if score.renormalise else ()
            self._score_ids = (
                score_token_ids(self.tokenizer, score.positive, score.match, self.name),
                score_token_ids(self.tokenizer, negative, score.match, self.name),
            )
        return self._score_ids

    def first_token_prob(self, logprobs: Sequence[float]) -> float:
        """harmful_prob from the log-probabilities of score_ids() (positive, then negative),
        as spec.score says: P(positive), or P(positive) / (P(positive) + P(negative))."""
        pos, neg = self.score_ids()
        p = _logsumexp(logprobs[: len(pos)])
        if not neg:
            return math.exp(p)
        return 1.0 / (1.0 + math.exp(_logsumexp(logprobs[len(pos) :]) - p))

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def first_logprobs(
    backend: Any, requests: Sequence[GenerationRequest], ids: tuple[int, ...]
) -> list[tuple[float, ...]]:
    """log P(id | request) at the first generated position, for each of `ids`, per request.

    On a backend that scores first tokens this is one forward per request (one generated
    token), and a request whose prompt does not fit the model's context gets an empty
    tuple; on another, one log-likelihood request per request and id."""
    if scores_first_tokens(backend):
        one = [replace(r, max_new_tokens=1, score_ids=ids) for r in requests]
        return [o.first_logprobs for o in backend.generate(one)]
    names = [backend.tokenizer.decode([i]) for i in ids]  # what each id reads as
    pairs = list(zip(ids, names, strict=True))
    asks = [LoglikRequest(r, t, token_id=i) for r in requests for i, t in pairs]
    scored = backend.loglikelihood(asks)
    k = len(ids)
    return [
        tuple(s.first_token_logprob for s in scored[j * k : (j + 1) * k])
        for j in range(len(requests))
    ]


def scores_first_tokens(backend: Any) -> bool:
    """Whether `backend` returns first-token log-probabilities from generate() (a backend
    registered without saying is taken not to)."""
    return bool(getattr(backend, "scores_first_tokens", False))


def too_long_judgment() -> Judgment:
    """No verdict: the judge's prompt does not fit its model's context (recorded as a parse
    error, never read as a verdict on an empty output)."""
    return Judgment(parse_error=True, raw="the judge prompt is longer than the judge's context")


def parse_or_error(parse: Callable[[str], Judgment], text: str) -> Judgment:
    """parse(text), or a parse-error Judgment keeping the raw text. Never a guess."""
    try:
        return replace(parse(text), raw=text)
    except JudgeOutputError:
        return Judgment(parse_error=True, raw=text)


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def score_token_ids(
    tokenizer: Any, words: Sequence[str], match: str, judge: str
) -> tuple[int, ...]:
    """The token ids that score `words` under FirstTokenScore.match: "token", the one token
    each word encodes to (a word the tokenizer splits is an error: a score read from its first
    piece is not the judge's score); "vocab", the vocabulary entry spelled as the word, as
    the source indexes it; "any_case", every token whose text, stripped and lower-cased, is
    one of the words."""
    if match == "any_case":
        wanted = {w.lower() for w in words}
        found = [
            i for i in range(len(tokenizer)) if tokenizer.decode([i]).strip().lower() in wanted
        ]
        seen = {tokenizer.decode([i]).strip().lower() for i in found}
        if not seen >= wanted:
            raise ValueError(f"{judge}: the tokenizer has no token for {sorted(wanted - seen)}")
        return tuple(found)
    out = []
    for w in words:
        if match == "vocab":
            i = tokenizer.convert_tokens_to_ids(w)
            if i is None or tokenizer.convert_ids_to_tokens(i) != w:
                raise ValueError(
                    f"{judge}: the tokenizer's vocabulary has no entry {w!r}, which the judge's "
                    "source scores (is this the judge's own tokenizer?)"
                )
            out.append(i)
            continue
        ids = _ids(tokenizer, w)
        if len(ids) != 1:
            raise ValueError(
                f"{judge}: the score token {w!r} is {len(ids)} tokens of this model's tokenizer; "
                "the judge's score is the probability of one first token (is this the judge's "
                "own tokenizer?)"
            )
        out.append(ids[0])
    return tuple(out)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def clip_tokens(
    tokenizer: Any, text: str, max_length: int, keep: str = "start", skip_special: bool = True
) -> str:
    """`text` encoded with the tokenizer's special tokens, cut to `max_length` tokens (keep
    "start" or "end"; the special tokens count) and decoded again, as judges' sources clip
    responses: HarmBench's evaluate_completions.py encodes every generation with
    max_length=512, truncation=True and decodes it skipping special tokens; StrongREJECT's
    fine-tuned evaluator truncates from the left and decodes without skipping them. Every
    text goes through the round trip, clipped or not, as in those sources."""
    if keep not in ("start", "end"):
        raise ValueError(f"keep must be 'start' or 'end', got {keep!r}")
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "right" if keep == "start" else "left"
    try:
        ids = tokenizer(text, max_length=max_length, truncation=True)["input_ids"]
    finally:
        tokenizer.truncation_side = side
    return tokenizer.decode(ids, skip_special_tokens=skip_special)
