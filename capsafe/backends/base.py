"""The generation backend interface: one method that turns requests into outputs.

Backends are registered by name; `BACKENDS.create("transformers", model=..., adapter=...)`
returns one. The vLLM and OpenAI-compatible (served model) backends implement the same Protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from capsafe.records import GenerationOutput, GenerationRequest, Loglik, LoglikRequest
from capsafe.registry import Registry

# Called with the number of requests finished since the last call.
ProgressFn = Callable[[int], None]


class Backend(Protocol):
    name: str
    # Whether generate() fills GenerationOutput.first_logprobs for requests with score_ids
    # (from the first decoding step of the one forward it runs). A backend without it gets
    # first-token scores from loglikelihood(), one request per scored id.
    scores_first_tokens: bool

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[GenerationOutput]:
        """One output per request, in request order."""
        ...

    def loglikelihood(
        self, requests: Sequence[LoglikRequest], progress: ProgressFn | None = None
    ) -> list[Loglik]:
        """The log-probability of each request's continuation after its rendered context.

        The continuation's tokens are its own tokenization appended to the context's ids
        (no special tokens added), so "unsafe" after a Llama Guard prompt is scored as
        the model would emit it.
        """
        ...

    def set_adapter(self, adapter: str | None) -> None:
        """Generate with this PEFT adapter on the loaded base (None: the base alone).

        The base stays loaded, so a base and its dozen checkpoints load the base once.
        """
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...


BACKENDS: Registry[Backend] = Registry("backend", "capsafe.backends")
register_backend = BACKENDS.register
