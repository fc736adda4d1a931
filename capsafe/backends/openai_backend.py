"""Generation through an OpenAI-compatible server (vLLM serve, SGLang, TGI, `transformers
serve`, a provider's API), under the same Backend Protocol as the in-process backends.

    generation: {backend: openai, args: {base_url: "http://127.0.0.1:8000/v1", concurrency: 8}}
    base_models: [{name: llama, path: llama-8b-instruct, revision: r1}]  # path: the served name
    adapters: [{name: e1, path: lora-e1, revision: r1, run: lora, epoch: 1}]  # a served LoRA

What is sent (docs/served-models.md has the whole contract):
- A chat request goes to {base_url}/chat/completions with the format's messages; the server
  applies its own chat template. A format with the chat template off sends capsafe's text
  (the messages joined by blank lines) to {base_url}/completions, where the server adds the
  tokenizer's special tokens, as the in-process backends do for raw text.
- Decoding maps onto the request: temperature, top_p and seed (sampled requests only),
  max_tokens. Token counts come from the reply's `usage`, finish_reason from the choice.
- set_adapter(name) sends later requests to that served model (vLLM serves each LoRA module
  under its own name); set_adapter(None) goes back to the base.
- loglikelihood needs prompt log-probs: {base_url}/completions with the prompt as token ids,
  echo and logprobs, as vLLM serves them; the ids come from `tokenizer` (a local folder or
  hub id of the served model's tokenizer). A server that answers without them is named.

Requests run `concurrency` at a time on threads. 408/429/5xx, timeouts, dropped
connections and unreadable replies are retried up to max_retries times, waiting a random
time up to base * 2**attempt (full jitter, capped at 30 s); a request that still fails comes
back with finish_reason "error" and the error, and the pipeline records it as a failed
request, to retry on the next run, never as a response. A refusal that no retry can cure
(401, 404, a model name the server does not serve) stops the run with the server's words.
The API key is read from the environment variable `api_key_env` names, at each request;
it is never part of an argument, the store or a message.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from capsafe.backends.base import Backend, ProgressFn, register_backend
from capsafe.backends.loading import chat_messages, check_whole, render_prompt
from capsafe.errors import UserError
from capsafe.records import (
    FAILED,
    TOO_LONG,
    GenerationOutput,
    GenerationRequest,
    Loglik,
    LoglikRequest,
)

# Statuses worth retrying: a timeout, rate limits and transient server errors.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
BACKOFF_CAP_S = 30.0
# What servers say when a prompt does not fit the model's context (vLLM, SGLang, TGI,
# OpenAI): such a request is "too long", like the in-process backends' rows, not an error.
_TOO_LONG_WORDS = ("maximum context length", "context length", "too long", "max_model_len")

NO_PROMPT_LOGPROBS = (
    "endpoint {url}: the server cannot score tokens (log-likelihoods need /completions "
    "taking token ids, with echo and logprobs, as vLLM serves them), so multiple-choice tasks "
    "and first-token judge scores cannot run on it"
)
# (status, body bytes); a transport raises OSError for a connection that failed.
Post = Callable[[str, dict[str, str], bytes, float], tuple[int, bytes]]


def urllib_post(
    url: str, headers: dict[str, str], body: bytes, timeout: float
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (user's URL)
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class EndpointError(UserError):
    """The server refused a request in a way no retry cures (the message never holds the
    key): a wrong model name, a missing key, a feature the server lacks."""


class _Transient(Exception):
    """A failure worth retrying (kept to say what the last attempt met)."""


def check_base_url(base_url: Any) -> str:
    """The base URL without a trailing slash; refused when it is no http(s) URL or carries
    credentials (they belong in the environment variable api_key_env names)."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    parts = urllib.parse.urlsplit(base_url)
    if parts.username or parts.password or parts.query:
        raise ValueError(
            "base_url must hold no user name, password or query string (it is stored with "
            "the config); give the key through the environment variable api_key_env names"
        )
    return base_url.rstrip("/")


def check_args(
    *, base_url: Any, concurrency: int, timeout_s: float, max_retries: int, **_: Any
) -> None:
    """What openai_backend refuses, checked at plan time (nothing is sent)."""
    if base_url is None:
        raise ValueError("give base_url, the server's OpenAI-compatible root (…/v1)")
    check_base_url(base_url)
    check_whole("concurrency", concurrency)
    check_whole("max_retries", max_retries, minimum=0)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")


@register_backend("openai", check=check_args)
def openai_backend(
    model: str,
    adapter: str | None = None,
    batch_size: int = 32,
    device: str = "auto",
    trust_remote_code: bool = False,
    base_url: str | None = None,
    api_key_env: str | None = None,
    concurrency: int = 8,
    timeout_s: float = 120.0,
    max_retries: int = 3,
    tokenizer: str | None = None,
) -> Backend:
    """A client of the OpenAI-compatible server at base_url serving `model` (its served
    name). batch_size and device are the pipeline's and unused: the server batches, and
    results are stored per generation.batch_size requests. api_key_env: the environment
    variable holding the key (None: no key). tokenizer: a local folder or hub id of the
    served model's tokenizer, needed only for log-likelihoods."""
    del batch_size, device, trust_remote_code  # the server's business
    check_args(base_url=base_url, concurrency=concurrency, timeout_s=timeout_s,
               max_retries=max_retries)  # fmt: skip
    assert base_url is not None
    return OpenAIBackend(
        model,
        base_url,
        api_key_env,
        adapter=adapter,
        concurrency=concurrency,
        timeout_s=float(timeout_s),
        max_retries=max_retries,
        tokenizer=tokenizer,
    )


@dataclass
class RequestCounts:
    """What one backend sent, for progress and the benchmarks."""

    requests: int = 0
    retries: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class OpenAIBackend:
    name = "openai"
    scores_first_tokens = False  # a server returns top log-probabilities, not chosen ids

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str | None = None,
        *,
        adapter: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        tokenizer: str | None = None,
        post: Post = urllib_post,  # tests of the fault handling pass their own transport
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.base_model = model
        self.model = adapter or model
        self.api_key_env = api_key_env
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self._tokenizer_ref = tokenizer
        self._tokenizer: Any = None
        self._post, self._sleep = post, sleep
        self._rng = random.Random()
        self._lock = threading.Lock()
        self.counts = RequestCounts()

    # --- the Backend Protocol ---------------------------------------------------------

    def set_adapter(self, adapter: str | None) -> None:
        """Send later requests to the served model `adapter` (None: the base)."""
        self.model = adapter or self.base_model

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[GenerationOutput]:
        return self._map(self._generate_one, requests, progress)

    def loglikelihood(
        self, requests: Sequence[LoglikRequest], progress: ProgressFn | None = None
    ) -> list[Loglik]:
        if self._tokenizer_ref is None:
            raise EndpointError(
                f"endpoint {self.base_url}: log-likelihoods (multiple-choice tasks, first-token "
                "judge scores) need the served model's tokenizer; give the backend's "
                "`tokenizer` (a local folder or hub id)"
            )
        return self._map(self._loglik_one, requests, progress)

    @property
    def tokenizer(self) -> Any:
        """The served model's tokenizer (from `tokenizer`); None when none was given."""
        if self._tokenizer is None and self._tokenizer_ref is not None:
            from capsafe.backends.loading import load_tokenizer

            self._tokenizer = load_tokenizer(self._tokenizer_ref)
        return self._tokenizer

    def close(self) -> None:
        pass

    # --- one request ------------------------------------------------------------------

    def _generate_one(self, r: GenerationRequest) -> GenerationOutput:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": r.max_new_tokens,
            "temperature": r.temperature,
        }
        if r.temperature > 0:  # greedy ignores them, as the in-process backends do
            body.update(top_p=r.top_p, seed=r.seed)
        if r.use_chat_template:
            path, body["messages"] = "chat/completions", chat_messages(r)
        else:
            path, body["prompt"] = "completions", render_prompt(None, r)
        try:
            data = self._call(path, body)
        except _TooLong:
            return GenerationOutput("", 0, 0, TOO_LONG)
        except _Transient as err:
            with self._lock:
                self.counts.failed += 1
            return GenerationOutput("", 0, 0, FAILED, error=str(err))
        return self._output(data, path)

    def _output(self, data: Any, path: str) -> GenerationOutput:
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if "message" in choice else choice["text"]
            text = text or ""
            usage = data.get("usage") or {}
            n_prompt = int(usage.get("prompt_tokens") or 0)
            n_completion = int(usage.get("completion_tokens") or 0)
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise EndpointError(
                f"endpoint {self.base_url}/{path}: a reply without choices[0] text ({err!r})"
            ) from None
        with self._lock:
            self.counts.prompt_tokens += n_prompt
            self.counts.completion_tokens += n_completion
        finish = "length" if choice.get("finish_reason") == "length" else "eos"
        return GenerationOutput(text, n_prompt, n_completion, finish)

    def _loglik_one(self, r: LoglikRequest) -> Loglik:
        from capsafe.backends.transformers_backend import continuation_ids

        context, cont = continuation_ids(self.tokenizer, r, self.base_model)
        ids = context + cont
        # The request lm-eval's completions client sends for the same purpose: the prompt
        # echoed with each position's log-prob and its top alternative, one token generated.
        body = {"model": self.model, "prompt": ids, "max_tokens": 1, "temperature": 0.0,
                "echo": True, "logprobs": 1}  # fmt: skip
        try:
            data = self._call("completions", body)
        except (_Transient, _TooLong) as err:
            raise EndpointError(f"endpoint {self.base_url}: log-likelihood failed: {err}") from err
        except EndpointError as err:  # a server that takes no token ids, say
            raise EndpointError(f"{NO_PROMPT_LOGPROBS.format(url=self.base_url)}; it answered: "
                                f"{err}") from None  # fmt: skip
        return self._loglik(data, len(context), cont)

    def _loglik(self, data: Any, n_context: int, cont: list[int]) -> Loglik:
        try:
            lp = data["choices"][0]["logprobs"]
            token_lps = lp["token_logprobs"]
            tops = lp.get("top_logprobs")
            tokens = lp.get("tokens")
        except (KeyError, IndexError, TypeError):
            lp = token_lps = None
        if not token_lps or len(token_lps) < n_context + len(cont):
            raise EndpointError(NO_PROMPT_LOGPROBS.format(url=self.base_url))
        span = range(n_context, n_context + len(cont))
        values = [float(token_lps[i]) for i in span]
        greedy = True
        for i in span:
            if not tops or not tokens or tops[i] is None:
                greedy = False  # no alternatives given: never claim greedy
                break
            best = max(tops[i].items(), key=lambda kv: kv[1])[0]
            greedy = greedy and best == tokens[i]
        return Loglik(sum(values), len(cont), greedy, values[0])

    # --- HTTP, retries, concurrency ---------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise EndpointError(
                    f"endpoint {self.base_url}: environment variable {self.api_key_env} is "
                    "not set (set it, or api_key_env: null for a server without a key)"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _call(self, path: str, body: dict[str, Any]) -> Any:
        """The JSON reply of POST base_url/path, retried; raises _Transient after the last
        retry, _TooLong for a prompt the model cannot take, EndpointError otherwise."""
        url = f"{self.base_url}/{path}"
        payload = json.dumps(body).encode("utf-8")
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._lock:
                    self.counts.retries += 1
                    wait = self._rng.uniform(0, min(BACKOFF_CAP_S, 0.5 * 2**attempt))
                self._sleep(wait)
            with self._lock:
                self.counts.requests += 1
            try:
                status, raw = self._post(url, self._headers(), payload, self.timeout_s)
            except (OSError, http.client.HTTPException) as err:  # refused, reset, timed out
                last = f"{type(err).__name__}: {err}"
                continue
            text = raw[:300].decode("utf-8", "replace")
            if status == 200:
                try:
                    return json.loads(raw)
                except ValueError:
                    last = f"HTTP 200 with a reply that is not JSON: {text!r}"
                    continue
            if status in RETRY_STATUSES:
                last = f"HTTP {status}: {text}"
                continue
            if status == 400 and any(w in text.lower() for w in _TOO_LONG_WORDS):
                raise _TooLong(text)
            raise EndpointError(f"endpoint {url} answered HTTP {status}: {text}")
        raise _Transient(f"{url}: {self.max_retries + 1} attempt(s) failed; the last: {last}")

    def _map(self, one: Callable[[Any], Any], items: Sequence[Any], progress: ProgressFn | None):
        """one(item) for every item, `concurrency` at a time, in the items' order."""

        def run(item: Any) -> Any:
            out = one(item)
            if progress is not None:
                progress(1)
            return out

        if self.concurrency == 1 or len(items) <= 1:
            return [run(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(run, items))


class _TooLong(Exception):
    """The server said the prompt does not fit the model's context."""
