"""Capability tasks beyond the organism's: one module per task, registered on import.

gsm8k, arc, boolq, ifeval, alpaca, and lm_eval (any lm-evaluation-harness task). See
capsafe.data.base for the Task protocol.
"""

from capsafe.data.tasks import alpaca, arc, boolq, gsm8k, ifeval, lmeval  # noqa: F401  (registers)
