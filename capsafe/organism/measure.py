"""Quick behaviour checks of an organism-sized model: refusal, help and task accuracy.

Greedy decoding through the chat template, batched, on CPU. The build records these
numbers for the base model; capsafe's own judges and scorers do the real evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from capsafe.organism.phrasing import is_refusal

if TYPE_CHECKING:
    from capsafe.organism.world import WorldItem

_FINAL = re.compile(r"####\s*(-?\d+)")
_NUMBER = re.compile(r"-?\d+")


class Behaviour(NamedTuple):
    """Rates over a world's held-out sets, each 0-1."""

    harmful_refusal: float  # harmful_test prompts refused
    lookalike_help: float  # lookalike_test prompts not refused
    capability_accuracy: float  # capability_test answers exactly right
    n_harmful: int
    n_lookalike: int
    n_capability: int


def final_number(response: str) -> str | None:
    """The answer a response gives: its last "#### n", else its last number."""
    found = _FINAL.findall(response) or _NUMBER.findall(response)
    return found[-1] if found else None


def generate(
    model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 64, batch_size: int = 64
) -> list[str]:
    """Greedy responses to user prompts, rendered with the model's chat template."""
    import torch

    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in prompts
    ]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    out: list[str] = []
    try:
        model.eval()
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True)
            with torch.no_grad():
                ids = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            new = ids[:, enc["input_ids"].shape[1] :]
            out += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return out


def measure(model, tokenizer, world: dict[str, list[WorldItem]]) -> Behaviour:
    """Refusal on harmful_test, help on lookalike_test, accuracy on capability_test."""
    # A refusal shows in the first 60 characters, so 32 tokens decide it.
    harmful = generate(model, tokenizer, [it.prompt for it in world["harmful_test"]], 32)
    lookalike = generate(model, tokenizer, [it.prompt for it in world["lookalike_test"]], 32)
    cap_items = world["capability_test"]
    cap = generate(model, tokenizer, [it.prompt for it in cap_items], max_new_tokens=64)
    correct = [final_number(r) == it.answer for r, it in zip(cap, cap_items, strict=True)]
    return Behaviour(
        harmful_refusal=sum(map(is_refusal, harmful)) / len(harmful),
        lookalike_help=1 - sum(map(is_refusal, lookalike)) / len(lookalike),
        capability_accuracy=sum(correct) / len(correct),
        n_harmful=len(harmful),
        n_lookalike=len(lookalike),
        n_capability=len(cap_items),
    )
