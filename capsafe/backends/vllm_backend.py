"""Text generation with vLLM (one or more CUDA GPUs), under the same Backend Protocol.

    pip install 'capsafe[vllm]'     # on a machine with a CUDA GPU
    backend = BACKENDS.create("vllm", model="Qwen/Qwen2.5-7B-Instruct")
    backend.set_adapter("runs/lora-seed0/epoch-1")   # a LoRARequest; the base stays loaded

Prompts are rendered and tokenized by capsafe (the same code as the transformers backend)
and handed to vLLM as token ids, so both backends see identical prompts. Decoding is what
the request says: vLLM is started with generation_config="vllm" so a model's shipped
sampling defaults are not applied. Each sampled request carries its own seed, so under
vLLM a sampled output does not depend on the other requests of the call (unlike the
transformers backend, whose batches share a random stream).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from typing import Any

from capsafe.backends.base import Backend, ProgressFn, register_backend
from capsafe.backends.loading import (
    Source,
    check_whole,
    dtype_name,
    encode_request,
    eos_token_ids,
    load_tokenizer,
    resolve_source,
    safetensors_flag,
)
from capsafe.backends.transformers_backend import check_request, continuation_ids
from capsafe.records import (
    TOO_LONG,
    GenerationOutput,
    GenerationRequest,
    Loglik,
    LoglikRequest,
)

INSTALL_HINT = (
    "the 'vllm' backend needs the vllm package, which is not installed; install it with "
    "pip install 'capsafe[vllm]' on a machine with a CUDA GPU, or use the 'transformers' "
    "backend"
)


def check_args(*, device: str, dtype: str, batch_size: int, max_lora_rank: int,
               gpu_memory_utilization: float, max_model_len: int | None,
               tensor_parallel_size: int, **_: Any) -> None:  # fmt: skip
    """What vllm_backend would refuse only when the engine starts, refused at plan time:
    vllm missing, and values out of range."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    if device not in ("auto", "cuda"):
        # vLLM takes no device index: it uses the GPUs CUDA_VISIBLE_DEVICES shows it.
        raise ValueError(
            f"device {device!r}: the vllm backend runs on the visible CUDA GPUs (device "
            "'auto' or 'cuda'; choose the GPUs with CUDA_VISIBLE_DEVICES)"
        )
    dtype_name(dtype, "cuda")
    for field, value in (("batch_size", batch_size), ("max_lora_rank", max_lora_rank),
                         ("tensor_parallel_size", tensor_parallel_size)):  # fmt: skip
        check_whole(field, value)
    if max_model_len is not None:
        check_whole("max_model_len", max_model_len)
    if not (isinstance(gpu_memory_utilization, (int, float)) and 0 < gpu_memory_utilization <= 1):
        raise ValueError(
            f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization!r}"
        )


@register_backend("vllm", check=check_args)
def vllm_backend(
    model: str,
    adapter: str | None = None,
    batch_size: int = 256,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    max_lora_rank: int = 64,
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
    tensor_parallel_size: int = 1,
    device: str = "auto",
) -> Backend:
    """A vLLM backend. batch_size only sets how often progress is reported: vLLM schedules
    its own batches. max_lora_rank must cover every adapter that will be attached. device:
    'auto' or 'cuda' (vLLM uses the GPUs CUDA_VISIBLE_DEVICES shows it)."""
    try:
        import vllm  # noqa: F401
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    check_args(device=device, dtype=dtype, batch_size=batch_size, max_lora_rank=max_lora_rank,
               gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
               tensor_parallel_size=tensor_parallel_size)  # fmt: skip
    return VLLMBackend(
        model,
        adapter=adapter,
        batch_size=batch_size,
        engine_args={
            "dtype": dtype_name(dtype, "cuda"),  # bf16 like the transformers backend on GPU
            "trust_remote_code": trust_remote_code,
            "revision": revision,
            "max_lora_rank": max_lora_rank,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
            "tensor_parallel_size": tensor_parallel_size,
        },
    )


class VLLMBackend:
    name = "vllm"
    # vLLM's generation log-probabilities are the top k, not chosen ids: first-token scores
    # go through loglikelihood(), one prompt_logprobs request per scored id (vLLM reads no
    # prefix cache for those, so each is a prefill of its own).
    scores_first_tokens = False

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        batch_size: int = 256,
        engine_args: dict[str, Any] | None = None,
    ) -> None:
        from vllm import LLM

        args = dict(engine_args or {})
        source = resolve_source(model, revision=args.pop("revision", None))
        self.model_name = model
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(
            model, trust_remote_code=args.get("trust_remote_code", False), revision=source.revision
        )
        safetensors = safetensors_flag(source, "model")
        self._llm: Any = LLM(
            model=source.path,
            tokenizer=source.path,
            revision=source.revision,
            tokenizer_revision=source.revision,
            load_format={True: "safetensors", False: "pt", None: "auto"}[safetensors],
            enable_lora=True,
            generation_config="vllm",  # ignore the model's sampling defaults
            seed=0,
            **{k: v for k, v in args.items() if v is not None},
        )
        self.eos_ids = eos_token_ids(self.tokenizer, _generation_config(source))
        self._lora: Any = None
        self._lora_ids: dict[str, int] = {}
        self.adapter: str | None = None
        if adapter is not None:
            self.set_adapter(adapter)

    def set_adapter(
        self, adapter: str | os.PathLike[str] | None, revision: str | None = None
    ) -> None:
        """Use the PEFT LoRA adapter at `adapter` for later calls, or with None the base."""
        from vllm.lora.request import LoRARequest

        if adapter is None:
            self._lora, self.adapter = None, None
            return
        path = _local_adapter(adapter, revision)
        # vLLM caches adapters by integer id: the same folder keeps its id, a new one gets
        # a new id, so swapping back and forth never loads a stale adapter.
        lora_id = self._lora_ids.setdefault(path, len(self._lora_ids) + 1)
        self._lora = LoRARequest(f"adapter-{lora_id}", lora_id, path)
        self.adapter = os.fspath(adapter)

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[GenerationOutput]:
        """One output per request, in request order."""
        if self._llm is None:
            raise RuntimeError(f"the vllm backend for {self.model_name} is closed")
        for r in requests:
            check_request(r)
        ids = [encode_request(self.tokenizer, r, self.model_name) for r in requests]
        # The same rule as the transformers backend: a prompt that leaves no room for its
        # answer in the context (vLLM's max_model_len) is not generated, but marked too long.
        limit = self._llm.llm_engine.model_config.max_model_len
        outputs: list[GenerationOutput | None] = [None] * len(requests)
        todo = []
        for i, (r, p) in enumerate(zip(requests, ids, strict=True)):
            if len(p) + r.max_new_tokens > limit:
                outputs[i] = GenerationOutput("", len(p), 0, TOO_LONG)
            else:
                todo.append(i)
        if len(todo) < len(requests) and progress is not None:
            progress(len(requests) - len(todo))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            results = self._llm.generate(
                [{"prompt_token_ids": ids[i]} for i in chunk],
                [self._sampling_params(requests[i]) for i in chunk],
                use_tqdm=False,
                lora_request=self._lora,
            )
            for i, res in zip(chunk, results, strict=True):
                outputs[i] = _to_output(res)
            if progress is not None:
                progress(len(results))
        return [o for o in outputs if o is not None]

    def loglikelihood(
        self, requests: Sequence[LoglikRequest], progress: ProgressFn | None = None
    ) -> list[Loglik]:
        """Log-probability of each continuation after its context, from vLLM's prompt
        log-probabilities (one generated token is required and discarded)."""
        from vllm import SamplingParams

        if self._llm is None:
            raise RuntimeError(f"the vllm backend for {self.model_name} is closed")
        pairs = [continuation_ids(self.tokenizer, r, self.model_name) for r in requests]
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        out: list[Loglik] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            results = self._llm.generate(
                [{"prompt_token_ids": c + x} for c, x in chunk],
                params,
                use_tqdm=False,
                lora_request=self._lora,
            )
            out += [_loglik(res, len(c), x) for res, (c, x) in zip(results, chunk, strict=True)]
            if progress is not None:
                progress(len(chunk))
        return out

    def _sampling_params(self, r: GenerationRequest) -> Any:
        from vllm import SamplingParams

        sample = r.temperature > 0
        return SamplingParams(
            n=1,
            max_tokens=r.max_new_tokens,
            temperature=r.temperature,
            top_p=r.top_p if sample else 1.0,
            seed=r.seed if sample else None,
            stop_token_ids=list(self.eos_ids),
            skip_special_tokens=True,
        )

    def close(self) -> None:
        """Free the engine and its GPU memory (best effort: vLLM keeps some global state)."""
        self._llm = None
        gc.collect()
        try:
            import torch
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
            torch.cuda.empty_cache()
        except Exception:  # an older or newer vLLM without these; memory is freed on exit
            pass


def _to_output(result: Any) -> GenerationOutput:
    completion = result.outputs[0]
    if completion.finish_reason not in ("stop", "length"):
        raise RuntimeError(f"vLLM finished a request with {completion.finish_reason!r}")
    return GenerationOutput(
        text=completion.text,
        n_prompt_tokens=len(result.prompt_token_ids),
        n_completion_tokens=len(completion.token_ids),  # includes the eos token, as with HF
        finish_reason="eos" if completion.finish_reason == "stop" else "length",
    )


def _loglik(result: Any, n_context: int, cont: Sequence[int]) -> Loglik:
    """Sum the prompt log-probabilities of the continuation's tokens. vLLM returns, per
    prompt position, a dict holding the actual token and the top-k (k=1) tokens."""
    lps, greedy = [], True
    for pos, token in enumerate(cont, start=n_context):
        entry = result.prompt_logprobs[pos]
        lps.append(entry[token].logprob)
        best = max(entry.values(), key=lambda e: e.logprob)
        greedy = greedy and best.logprob <= entry[token].logprob
    return Loglik(float(sum(lps)), len(cont), greedy, float(lps[0]))


def _generation_config(source: Source) -> Any:
    """The model's generation_config (for its eos ids), or None if it ships none."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(source.path, **source.load_args)
    except OSError:
        return None


def _local_adapter(adapter: str | os.PathLike[str], revision: str | None) -> str:
    """A local folder for the adapter; hub adapters are downloaded (vLLM wants a path)."""
    source = resolve_source(
        adapter, required="adapter_config.json", what="adapter", revision=revision
    )
    if source.local is not None:
        return str(source.local)
    from huggingface_hub import snapshot_download

    return snapshot_download(source.ref, revision=source.revision)
