"""The kl_to_aligned recipe's trainer: SFT loss + beta * KL(aligned || tuned) on trained tokens.

The aligned model is the base itself, read by switching the LoRA adapter off (PEFT's
disable_adapter), so no second copy of the model is loaded. The KL is the mean over the
completion tokens (labels != -100) of sum_v p_aligned(v) (log p_aligned(v) - log p_tuned(v)),
for the next-token distribution at each position; it is logged as `kl_to_aligned`.

Imported only when that recipe trains (torch and trl load here).
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer


def kl_on_labels(
    logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean KL(ref || tuned) of next-token distributions over the positions whose next token is
    trained (labels shifted by one, -100 ignored); 0 when no position is trained."""
    mask = labels[:, 1:] != -100
    if not mask.any():
        return logits.sum() * 0.0
    logp = torch.log_softmax(logits[:, :-1][mask].float(), dim=-1)
    ref = torch.log_softmax(ref_logits[:, :-1][mask].float(), dim=-1)
    return (ref.exp() * (ref - logp)).sum(-1).mean()


class KLToAlignedTrainer(SFTTrainer):
    """An SFTTrainer whose loss adds beta times the KL to the adapter-free (aligned) model."""

    def __init__(self, *args: Any, kl_beta: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kl_beta = kl_beta

    def compute_loss(
        self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        # TRL's forward returns per-token log-probs of the labels, not the full distributions
        # a KL needs: one more forward with the adapter, one without it (no gradient). Outputs
        # are only asked for by evaluation, which capsafe's training never runs.
        result = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        loss, outputs = result if return_outputs else (result, None)
        forward = {k: inputs[k] for k in ("input_ids", "attention_mask") if k in inputs}
        logits = model(**forward, use_cache=False).logits
        peft_model = self.accelerator.unwrap_model(model)
        with torch.no_grad(), peft_model.disable_adapter():
            ref_logits = model(**forward, use_cache=False).logits
        kl = kl_on_labels(logits, ref_logits, inputs["labels"])
        mode = "train" if model.training else "eval"
        self._metrics[mode]["kl_to_aligned"].append(kl.detach().item())
        loss = loss + self.kl_beta * kl
        return (loss, outputs) if return_outputs else loss
