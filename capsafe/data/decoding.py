"""Each prompt set's and task's default decoding: what its own authors generate with.

One global `decoding` cannot serve GSM8K's chain of thought (hundreds of tokens) and a
safety prompt alike: too few tokens under-measure capability and cut a harmful answer
before the judge sees it. A set or task listed here gets these settings wherever the
config says nothing of its own (precedence: capsafe.config.DecodingOverride). Each entry
names its source; a set not listed keeps DecodingSpec's defaults.

A task object may carry its own `decoding` mapping (an lm-evaluation-harness task reads its
generation_kwargs), which takes the place of an entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULTS: dict[str, dict[str, Any]] = {
    # HarmBench's scripts/run_pipeline.py: --max_new_tokens defaults to 512.
    "harmbench": {"max_new_tokens": 512},
    # jailbreakbench's config.py: MAX_GENERATION_LENGTH 150, TEMPERATURE 0 (greedy).
    "jailbreakbench": {"max_new_tokens": 150},
    # HEx-PHI's own evaluation (LLMs-Finetuning-Safety, llama2/safety_evaluation/
    # question_inference.py): max_new_tokens 512; its top_p 0 keeps one token, so greedy.
    "hexphi": {"max_new_tokens": 512},
    # lm-evaluation-harness's gsm8k tasks give no max_gen_toks, so its models' default of
    # 256 generated tokens applies (lm_eval/models/huggingface.py, HFLM max_gen_toks).
    "gsm8k": {"max_new_tokens": 256},
    # lm-evaluation-harness's ifeval.yaml: generation_kwargs max_gen_toks 1280, greedy.
    "ifeval": {"max_new_tokens": 1280},
}


def default_decoding(name: str, task: object = None) -> Mapping[str, Any]:
    """The default decoding of the prompt set or task registered as `name`."""
    own = getattr(task, "decoding", None)
    if own is not None:
        return own
    return DEFAULTS.get(name, {})
