"""Rubric judges (strongreject, llm_judge) on a local chat model or on an OpenAI-compatible
server (vLLM serve, OpenAI, ...): with `base_url` the judge's model is the served one and
its requests go through the `openai` backend (capsafe/backends/openai_backend.py), the same
client, retries and concurrency as served generation. The API key is read from the
environment variable `api_key_env` names, at each request, so it is never part of judge
args, the store or logs.

    JUDGES.create("strongreject", model="gpt-4o-mini", base_url="https://api.openai.com/v1")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capsafe.judges.classifier import ModelJudge, ModelJudgeSpec


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
    concurrency: int = 8,
) -> ModelJudge:
    """A rubric judge on a local chat model, or with `base_url` on a server. `needs`
    completes the error when no model is named (what the judge's paper used, say)."""
    from capsafe.judges.classifier import ModelJudge

    if not model:
        raise ValueError(f"{spec.name}: give `model`, {needs}")
    if base_url is None:
        return ModelJudge(spec, model, backend=backend, batch_size=batch_size, device=device)
    served = {"base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency}
    return ModelJudge(spec, model, backend="openai", batch_size=batch_size, device=device,
                      backend_args=served)  # fmt: skip
