"""Fine-tuning: LoRA runs that write one PEFT adapter per epoch and resume after a crash.

Importing this package is cheap; torch, transformers, peft and trl load when training runs.
"""

from capsafe.finetune.checkpoints import EpochCheckpoint, RunConflictError
from capsafe.finetune.hparams import LoraHparams
from capsafe.finetune.lora import finetune_lora

__all__ = ["EpochCheckpoint", "LoraHparams", "RunConflictError", "finetune_lora"]
