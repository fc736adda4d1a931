"""A LoRA run's hyperparameters: what shapes it besides its data and seed.

Kept apart from lora.py (which runs the training) so the trainer (sft.py) can take them
without importing the module that calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEDULERS = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class LoraHparams:
    """What shapes a LoRA run besides its data and seed."""

    learning_rate: float
    rank: int = 8
    alpha: int = 16
    epochs: int = 3
    dropout: float = 0.0  # on the LoRA branch's input
    target_modules: str | tuple[str, ...] = "all-linear"
    batch_size: int = 16  # examples per optimizer step
    max_length: int = 256  # tokens; longer examples are truncated (the end is cut)
    warmup_ratio: float = 0.0  # share of all steps spent warming the learning rate up
    weight_decay: float = 0.0
    scheduler: str = "constant"  # or "linear", "cosine" (decay to 0 at the last step)

    def __post_init__(self) -> None:
        checks = [
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.rank >= 1, "rank must be >= 1"),
            (self.alpha > 0, "alpha must be > 0"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.max_length >= 2, "max_length must be >= 2"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.scheduler in SCHEDULERS, f"scheduler must be one of {', '.join(SCHEDULERS)}"),
            (bool(self.target_modules), "target_modules must name at least one module"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"LoraHparams: {message}")
