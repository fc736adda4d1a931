"""Text generation with transformers (CPU or one GPU): batched, left-padded, greedy or seeded.

    backend = BACKENDS.create("transformers", model=".capsafe/organism")
    outputs = backend.generate(requests)          # one GenerationOutput per request, in order
    backend.set_adapter("runs/lora-seed0/epoch-1")  # the base stays loaded; swap freely
    backend.set_adapter(None)                     # back to the base, bit for bit

Requests are grouped by decoding settings, sorted by prompt length inside a group (so a
batch holds similar lengths and wastes little on padding), cut into batches of
batch_size, and returned in the caller's order. Every few tokens, rows that reached eos
leave their batch (see decode), so a batch costs what its live rows cost.

Decoding is exactly what the request says: greedy when temperature is 0, else sampling
with temperature and top_p (no top-k, no repetition penalty). Settings a model ships in
its generation_config.json (Llama-3 samples at 0.6, Qwen adds a repetition penalty) are
deliberately not applied, so a store key's decoding parameters mean what they say and the
vLLM backend can match.

batching "continuous" (generation: {args: {batching: continuous}}) hands greedy requests to
transformers' continuous batching (generate_batch, paged attention, the engine behind
`transformers serve`): a finished row's slot goes to the next prompt at once, so no batch
waits for its longest answer. Its greedy outputs equal static batching's (tested in float32
on CPU), but on CPU it is slower (docs/performance.md), and it is not yet measured on a GPU
(each call builds a paged cache sized to the free GPU memory), so static is the default.
Sampled requests, and requests that ask for first-token scores, always batch statically
(the seeding below, and the first step's logits, are static batching's).

Sampling seeds torch once per batch from the requests' seed and the batch's content, so
the same requests with the same seeds give the same outputs on the same machine. A sampled
output may change when the other requests of its batch change (other prompts, another
batch_size), because the batch shares one random stream. Greedy outputs do not depend on
batching in float32 (tested on CPU); in bf16 on a GPU, kernels chosen by batch shape can
change the last bits of a logit and so, rarely, a near-tied token.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
import os
from collections.abc import Hashable, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any, NamedTuple

from capsafe.backends.base import Backend, ProgressFn, register_backend
from capsafe.backends.loading import (
    attach_adapter,
    check_device,
    check_whole,
    detach_adapter,
    dtype_name,
    encode_request,
    eos_token_ids,
    load_model,
    load_tokenizer,
)
from capsafe.errors import UserError
from capsafe.records import (
    TOO_LONG,
    GenerationOutput,
    GenerationRequest,
    Loglik,
    LoglikRequest,
)

# With left padding, batched greedy decoding must equal one-prompt-at-a-time decoding.
# "sdpa" and "eager" both keep that on CPU float32 (padded keys get exactly zero weight and
# positions come from the attention mask); tests/test_backends.py checks it. On the
# organism on CPU the two are equally fast; on GPU sdpa is faster and needs less memory.
# We pin it rather than inherit what a model's config asks for (flash-attention, say,
# which CPU machines lack).
ATTENTION = "sdpa"
# Rows that reached eos leave their batch every this many new tokens (see decode).
COMPACT_EVERY = 8
BATCHING = ("static", "continuous")
# Continuous batching is handed this many batch_sizes of prompts at a time (progress is
# reported per hand-over; the engine keeps its own batch full inside one).
CONTINUOUS_CHUNK = 16


def check_args(
    *, device: str, dtype: str, batch_size: int, batching: str = "static", **_: Any
) -> None:
    """The values transformers_backend would refuse only after loading, refused now."""
    check_device(device)
    dtype_name(dtype, "cpu")
    check_whole("batch_size", batch_size)
    if batching not in BATCHING:
        raise UserError(f"batching must be one of {', '.join(BATCHING)}, got {batching!r}")


@register_backend("transformers", check=check_args)
def transformers_backend(
    model: str,
    adapter: str | None = None,
    batch_size: int = 32,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    batching: str = "static",
) -> Backend:
    """A transformers backend for `model` (hub id or local folder), optionally with a PEFT
    adapter. device 'auto': cuda if available else cpu; dtype 'auto': bf16 on cuda, fp32 on cpu;
    batching 'static' or 'continuous' (see the module docstring)."""
    check_args(device=device, dtype=dtype, batch_size=batch_size, batching=batching)
    return TransformersBackend.load(
        model,
        adapter=adapter,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        revision=revision,
        batching=batching,
    )


class _Prompt(NamedTuple):
    index: int  # position in the caller's list
    ids: list[int]
    request: GenerationRequest


class TransformersBackend:
    """Generation on an already-loaded model and tokenizer; `load` builds one from a path.

    The adapter can be swapped with `set_adapter` without reloading the base model.
    """

    name = "transformers"
    scores_first_tokens = True

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 32,
        model_name: str = "model",
        batching: str = "static",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if batching not in BATCHING:
            raise ValueError(f"batching must be one of {BATCHING}, got {batching!r}")
        self.batching = batching
        self._model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.model_name = model_name
        self.adapter: str | None = None
        self.eos_ids = eos_token_ids(tokenizer, getattr(model, "generation_config", None))
        pad = tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else self.eos_ids[0]

    @classmethod
    def load(
        cls,
        model: str,
        *,
        adapter: str | None = None,
        batch_size: int = 32,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        revision: str | None = None,
        batching: str = "static",
    ) -> TransformersBackend:
        tokenizer = load_tokenizer(model, trust_remote_code=trust_remote_code, revision=revision)
        loaded = load_model(
            model,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            revision=revision,
            attn_implementation=ATTENTION,
        )
        backend = cls(loaded, tokenizer, batch_size=batch_size, model_name=model, batching=batching)
        if adapter is not None:
            backend.set_adapter(adapter)
        return backend

    @property
    def model(self) -> Any:
        """The model generation runs on: the base, or the base with the current adapter."""
        if self._model is None:
            raise RuntimeError(f"the transformers backend for {self.model_name} is closed")
        return self._model

    def set_adapter(
        self, adapter: str | os.PathLike[str] | None, revision: str | None = None
    ) -> None:
        """Attach the PEFT adapter at `adapter` (replacing any current one), or with None
        go back to the base. The base weights are never modified."""
        # Detach first, so that if the new adapter fails to load the backend is on the base
        # and says so, never on a half-swapped model.
        self._model, self.adapter = detach_adapter(self.model), None
        if adapter is not None:
            self._model = attach_adapter(self._model, adapter, revision=revision)
            self.adapter = os.fspath(adapter)

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[GenerationOutput]:
        """One output per request, in request order."""
        for r in requests:
            check_request(r)
        encoded = [
            _Prompt(i, encode_request(self.tokenizer, r, self.model_name), r)
            for i, r in enumerate(requests)
        ]
        outputs: list[GenerationOutput | None] = [None] * len(encoded)
        # A prompt the model cannot see whole, with room for its answer, is not generated
        # (transformers would only warn, and the answer would be scored as if it were fine).
        limit = context_length(self.model.config)
        prompts = []
        for p in encoded:
            if limit is not None and len(p.ids) + p.request.max_new_tokens > limit:
                outputs[p.index] = GenerationOutput("", len(p.ids), 0, TOO_LONG)
            else:
                prompts.append(p)
        if len(prompts) < len(encoded) and progress is not None:
            progress(len(encoded) - len(prompts))
        if self.batching == "continuous":
            prompts = self._generate_continuous(prompts, outputs, progress)
        batches = plan_batches(
            [len(p.ids) for p in prompts], [decoding_key(p.request) for p in prompts],
            self.batch_size,
        )  # fmt: skip
        for batch in batches:
            chosen = [prompts[i] for i in batch]  # indices into `prompts`
            for p, out in zip(chosen, self._generate_batch(chosen), strict=True):
                outputs[p.index] = out
            if progress is not None:
                progress(len(chosen))
        return [o for o in outputs if o is not None]

    def _generate_continuous(
        self,
        prompts: list[_Prompt],
        outputs: list[GenerationOutput | None],
        progress: ProgressFn | None,
    ) -> list[_Prompt]:
        """Generate the greedy, unscored prompts with continuous batching (into `outputs`);
        returns the others, which batch statically."""
        groups: dict[Hashable, list[_Prompt]] = {}  # greedy requests differ in length only
        rest = []
        for p in prompts:
            r = p.request
            if r.temperature == 0 and not r.score_ids:
                groups.setdefault(decoding_key(r), []).append(p)
            else:
                rest.append(p)
        step = self.batch_size * CONTINUOUS_CHUNK
        for group in groups.values():
            config = generation_config(group[0].request, self.eos_ids, self.pad_id)
            for start in range(0, len(group), step):
                chunk = group[start : start + step]
                for p, tokens in zip(chunk, self._continuous(chunk, config), strict=True):
                    outputs[p.index] = completion_output(
                        self.tokenizer, self.eos_ids, tokens, len(p.ids)
                    )
                if progress is not None:
                    progress(len(chunk))
        return rest

    def _continuous(self, prompts: Sequence[_Prompt], config: Any) -> list[list[int]]:
        import torch

        with torch.inference_mode():
            results = self.model.generate_batch(
                [p.ids for p in prompts], generation_config=config, progress_bar=False
            )
        # generate_batch logs a request that failed or went missing and returns the rest.
        done = list(results.values())
        errors = [r.error for r in done if r.error]
        if len(done) != len(prompts) or errors:
            why = errors[0] if errors else "some requests never finished"
            raise RuntimeError(
                f"continuous batching on {self.model_name} returned {len(done)} of "
                f"{len(prompts)} outputs ({why}); generation batching: static avoids it"
            )
        return [list(r.generated_tokens) for r in done]

    def _generate_batch(self, prompts: Sequence[_Prompt]) -> list[GenerationOutput]:
        import torch

        model = self.model
        device = model.device
        width = max(len(p.ids) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):  # left padding: the prompt ends where generation starts
            input_ids[row, width - len(p.ids) :] = torch.tensor(p.ids, dtype=torch.long)
            mask[row, width - len(p.ids) :] = 1
        request = prompts[0].request  # all requests of a batch share their decoding settings
        config = generation_config(request, self.eos_ids, self.pad_id)
        input_ids, mask = input_ids.to(device), mask.to(device)
        scored = [p.request.score_ids for p in prompts]
        with torch.inference_mode():
            if config.do_sample:
                seed = batch_seed(request, [p.ids for p in prompts])
                cuda = [device.index or 0] if device.type == "cuda" else []
                with torch.random.fork_rng(devices=cuda):  # leave the caller's RNG alone
                    torch.manual_seed(seed)
                    rows, first = decode(model, input_ids, mask, config, self.eos_ids, scored)
            else:
                rows, first = decode(model, input_ids, mask, config, self.eos_ids, scored)
        return [
            replace(
                completion_output(self.tokenizer, self.eos_ids, tokens, len(p.ids)),
                first_logprobs=lps,
            )
            for p, tokens, lps in zip(prompts, rows, first, strict=True)
        ]

    def loglikelihood(
        self, requests: Sequence[LoglikRequest], progress: ProgressFn | None = None
    ) -> list[Loglik]:
        """Log-probability of each continuation after its context, in request order."""
        pairs = [continuation_ids(self.tokenizer, r, self.model_name) for r in requests]
        results: list[Loglik | None] = [None] * len(pairs)
        lengths = [len(c) + len(x) for c, x in pairs]
        for batch in plan_batches(lengths, [0] * len(pairs), self.batch_size):
            scored = score_batch(self.model, [pairs[i] for i in batch], self.pad_id)
            for i, res in zip(batch, scored, strict=True):
                results[i] = res
            if progress is not None:
                progress(len(batch))
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Free the model's memory; generate() fails afterwards."""
        import torch

        on_cuda = self._model is not None and self._model.device.type == "cuda"
        self._model = None
        gc.collect()
        if on_cuda:
            torch.cuda.empty_cache()

    def __enter__(self) -> TransformersBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def completion_output(
    tokenizer: Any, eos_ids: Sequence[int], tokens: Sequence[int], n_prompt: int
) -> GenerationOutput:
    """The output for one row of generated tokens: text up to the first eos (special tokens
    stripped), tokens counted up to and including it; the padding after it is not counted."""
    stop = next((i for i, t in enumerate(tokens) if t in eos_ids), None)
    if stop is None:  # ran to max_new_tokens: no eos, so no padding either
        return GenerationOutput(
            tokenizer.decode(tokens, skip_special_tokens=True), n_prompt, len(tokens), "length"
        )
    text = tokenizer.decode(tokens[:stop], skip_special_tokens=True)
    return GenerationOutput(text, n_prompt, stop + 1, "eos")


def continuation_ids(
    tokenizer: Any, request: LoglikRequest, model_name: str = "model"
) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) of a log-likelihood request."""
    context = encode_request(tokenizer, request.context, model_name)
    if request.token_id is not None:
        return context, [request.token_id]
    cont = list(tokenizer(request.continuation, add_special_tokens=False)["input_ids"])
    if not cont:
        raise ValueError("a log-likelihood request needs a non-empty continuation")
    return context, cont


def score_batch(
    model: Any, pairs: Sequence[tuple[list[int], list[int]]], pad_id: int
) -> list[Loglik]:
    """One forward pass over right-padded context+continuation rows; sums the continuation's
    token log-probabilities (float32 log-softmax, whatever the model's dtype)."""
    import torch

    width = max(len(c) + len(x) for c, x in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (c, x) in enumerate(pairs):
        ids[row, : len(c) + len(x)] = torch.tensor(c + x, dtype=torch.long)
        mask[row, : len(c) + len(x)] = 1
    with torch.inference_mode():
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
    out = []
    for row, (c, x) in enumerate(pairs):
        # Position t predicts token t+1: the continuation's tokens are predicted at
        # positions len(c)-1 .. len(c)+len(x)-2.
        pred = logits[row, len(c) - 1 : len(c) + len(x) - 1].float().log_softmax(-1)
        target = torch.tensor(x, device=pred.device)
        token_lp = pred.gather(1, target[:, None])[:, 0]
        greedy = bool((pred.argmax(-1) == target).all())
        out.append(Loglik(float(token_lp.sum()), len(x), greedy, float(token_lp[0])))
    return out


def decode(
    model: Any,
    input_ids: Any,
    mask: Any,
    config: Any,
    eos_ids: Sequence[int],
    score_ids: Sequence[Sequence[int]] = (),
) -> tuple[list[list[int]], list[tuple[float, ...]]]:
    """Generated tokens per row of a left-padded batch (a row may run on past its eos), and
    per row the log-probabilities of its score_ids at the first generated position.

    Every COMPACT_EVERY tokens the rows that reached eos leave the batch: generate() alone
    computes every row until the longest answer ends, which on the organism is a third
    more work than needed. Continuing from the cache feeds each row the same tokens at the
    same positions, so no token changes (the tests check this for greedy decoding).

    When any row asks for scores, the first call generates one token and returns its raw
    logits (output_logits: before any logits processor), so the score comes from the
    prefill the answer needs anyway instead of a forward of its own, and only one step's
    logits are ever held.
    """
    import torch

    step = copy.deepcopy(config)
    step.return_dict_in_generate = True
    rows = input_ids.shape[0]
    tokens: list[list[int]] = [[] for _ in range(rows)]
    first: list[tuple[float, ...]] = [()] * rows
    wanted = any(score_ids)
    alive = list(range(rows))  # caller's rows still generating
    cache, left, chunk = None, config.max_new_tokens, 1 if wanted else COMPACT_EVERY
    while left > 0 and alive:
        step.max_new_tokens = min(left, chunk)
        step.output_logits = wanted and cache is None
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            generation_config=step,
            **{_cache_name(): cache},
        )
        if step.output_logits:
            logprobs = out.logits[0].float().log_softmax(-1)
            for row, ids in enumerate(score_ids):
                if ids:
                    first[row] = tuple(logprobs[row, list(ids)].tolist())
            chunk = COMPACT_EVERY
        new = out.sequences[:, input_ids.shape[1] :].tolist()
        for row, seq in zip(alive, new, strict=True):
            tokens[row] += seq
        left -= len(new[0])
        cache = getattr(out, _cache_name())
        keep = [j for j, seq in enumerate(new) if not set(seq) & set(eos_ids)]
        if not _can_drop_rows(cache):  # finish in one call with every row instead
            keep, chunk = list(range(len(alive))), left
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], len(new[0])))], dim=1)
        input_ids = out.sequences
        if len(keep) < len(alive):
            index = torch.tensor(keep, dtype=torch.long, device=input_ids.device)
            cache.batch_select_indices(index)
            input_ids, mask = input_ids[index], mask[index]
            alive = [alive[j] for j in keep]
    return tokens, first


@lru_cache(maxsize=1)
def _cache_name() -> str:
    """What generate() calls the KV cache it takes and returns: "cache" from transformers
    5.2x on (which deprecates the older "past_key_values")."""
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    return (
        "cache" if "cache" in GenerateDecoderOnlyOutput.__dataclass_fields__ else "past_key_values"
    )


def _can_drop_rows(cache: Any) -> bool:
    # Only the plain full-attention cache is known to slice rows cleanly.
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    return type(cache) is DynamicCache and all(type(x) is DynamicLayer for x in cache.layers)


def context_length(config: Any) -> int | None:
    """The model's context in tokens (max_position_embeddings; None if it has none)."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    text = getattr(config, "text_config", None)  # multimodal configs nest it
    return context_length(text) if text is not None else None


def check_request(r: GenerationRequest) -> None:
    """Reject decoding settings no backend can honour, naming the field."""
    if r.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {r.max_new_tokens}")
    if r.temperature < 0:
        raise ValueError(f"temperature must be 0 (greedy) or positive, got {r.temperature}")
    if not 0 < r.top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {r.top_p}")
    if not r.messages:
        raise ValueError("a generation request needs at least one message")


def decoding_key(r: GenerationRequest) -> Hashable:
    """Requests with equal keys may share a batch. Greedy ignores top_p and the seed."""
    if r.temperature == 0:
        return (r.max_new_tokens, 0.0, 1.0, 0)
    return (r.max_new_tokens, r.temperature, r.top_p, r.seed)


def plan_batches(
    lengths: Sequence[int], keys: Sequence[Hashable], batch_size: int
) -> list[list[int]]:
    """Indices per batch: grouped by key, sorted by length within a group, cut to batch_size."""
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    batches = []
    for members in groups.values():
        members.sort(key=lambda i: (lengths[i], i))
        batches += [members[s : s + batch_size] for s in range(0, len(members), batch_size)]
    return batches


def batch_seed(request: GenerationRequest, prompt_ids: Sequence[Sequence[int]]) -> int:
    """A 63-bit torch seed from the request's seed, its decoding settings and the batch."""
    payload = json.dumps([list(decoding_key(request)), [list(p) for p in prompt_ids]])
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:8], "little") >> 1


def generation_config(request: GenerationRequest, eos_ids: Sequence[int], pad_id: int) -> Any:
    """The transformers GenerationConfig for `request`, with every logits processor a model's
    own generation_config might switch on set to neutral (see the module docstring)."""
    from transformers import GenerationConfig

    if request.temperature > 0:
        sampling = {"do_sample": True, "temperature": request.temperature, "top_p": request.top_p}
        sampling["top_k"] = 0  # off; transformers would otherwise default to 50
    else:  # transformers' own defaults, which it does not warn about when greedy
        sampling = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "top_k": 50}
    return GenerationConfig(
        max_new_tokens=request.max_new_tokens,
        **sampling,
        typical_p=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        num_beams=1,
        num_return_sequences=1,
        eos_token_id=list(eos_ids),
        pad_token_id=pad_id,
    )
