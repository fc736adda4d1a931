"""An OpenAI-compatible chat endpoint as a judge backend (vLLM serve, OpenAI, ...).

Rubric judges (strongreject, llm_judge) run either on a local model through capsafe's
backends or on an endpoint through this client. It speaks POST {base_url}/chat/completions
with the standard library only. The API key is read from the environment variable named
by `api_key_env` at each request, so it is never part of judge args, the store or logs.

    client = EndpointClient("gpt-4o-mini", "https://api.openai.com/v1", "OPENAI_API_KEY")
    ModelJudge(spec, "gpt-4o-mini", loaded=client).judge(items)
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from capsafe.backends.loading import chat_messages
from capsafe.records import GenerationOutput, GenerationRequest

if TYPE_CHECKING:
    from capsafe.judges.classifier import ModelJudge, ModelJudgeSpec

# Statuses worth retrying: rate limits and transient server errors.
_RETRY = {408, 429, 500, 502, 503, 504}

Post = Callable[[str, dict[str, str], bytes, float], tuple[int, bytes]]


def _urllib_post(
    url: str, headers: dict[str, str], body: bytes, timeout: float
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (user's URL)
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class EndpointError(RuntimeError):
    """The endpoint refused or failed a request (the message never holds the key)."""


class EndpointClient:
    """Chat completions, one request at a time, greedy unless the request says otherwise."""

    name = "openai_compatible"
    tokenizer = None  # no local tokenizer: judges that clip by tokens need a local model

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        *,
        timeout: float = 120.0,
        retries: int = 3,
        post: Post = _urllib_post,  # tests pass a fake
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint base_url must start with http:// or https://: {base_url!r}")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.api_key_env, self.timeout, self.retries, self._post = (
            api_key_env,
            timeout,
            retries,
            post,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise EndpointError(
                    f"endpoint {self.base_url}: environment variable {self.api_key_env} is "
                    "not set (set it, or api_key_env: null for an endpoint without a key)"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def complete(self, request: GenerationRequest) -> GenerationOutput:
        if not request.use_chat_template:
            raise ValueError("an endpoint judge needs chat messages, not a raw text prompt")
        body = {
            "model": self.model,
            "messages": chat_messages(request),
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
        }
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.retries + 1):
            status, raw = self._post(url, self._headers(), json.dumps(body).encode(), self.timeout)
            if status == 200:
                return _output(raw, url)
            if status not in _RETRY or attempt == self.retries:
                snippet = raw[:300].decode("utf-8", "replace")
                raise EndpointError(f"endpoint {url} answered HTTP {status}: {snippet}")
            time.sleep(min(2**attempt, 30))
        raise AssertionError("unreachable")

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Any = None
    ) -> list[GenerationOutput]:
        out = []
        for r in requests:
            out.append(self.complete(r))
            if progress is not None:
                progress(1)
        return out

    def loglikelihood(self, requests: Sequence[Any], progress: Any = None) -> list[Any]:
        raise NotImplementedError("an endpoint judge cannot score tokens; use a local model")

    def close(self) -> None:
        pass


def _output(raw: bytes, url: str) -> GenerationOutput:
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise EndpointError(f"endpoint {url}: unexpected reply ({err!r})") from err
    usage = data.get("usage") or {}
    finish = "length" if choice.get("finish_reason") == "length" else "eos"
    return GenerationOutput(
        text, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), finish
    )


def chat_judge_backend(
    model: str, base_url: str | None, api_key_env: str | None
) -> EndpointClient | None:
    """An endpoint client when `base_url` is given; None means a local backend."""
    return None if base_url is None else EndpointClient(model, base_url, api_key_env)


def chat_model_judge(
    spec: ModelJudgeSpec,
    model: str | None,
    base_url: str | None,
    api_key_env: str | None,
    *,
    backend: str,
    batch_size: int,
    device: str,
    needs: str,
) -> ModelJudge:
    """A rubric judge on a local chat model, or with `base_url` on an endpoint. `needs`
    completes the error when no model is named (what the judge's paper used, say)."""
    from capsafe.judges.classifier import ModelJudge

    if not model:
        raise ValueError(f"{spec.name}: give `model`, {needs}")
    return ModelJudge(
        spec,
        model,
        backend=backend,
        batch_size=batch_size,
        device=device,
        loaded=chat_judge_backend(model, base_url, api_key_env),
    )
