"""The price of a plan: per step, how much work and how many tokens, and its GPU-hours.

The throughput model (config `estimate:`, docs/cost.md) says how many tokens per second one
GPU processes for a model of one billion parameters, for training, for reading a prompt
(prefill) and for generating; a model of N billion parameters runs at rate / N, since each
token costs a fixed number of FLOPs (or bytes read) per parameter. A step's GPU-hours are
its tokens x N / rate. Generated tokens are counted at their limit (max_new_tokens), so
the generation estimate is an upper bound.

Tokens are counted with the model's own tokenizer and chat template where it is on this
machine (a local folder, the organism, the hub cache), else estimated as characters / 4.
Parameter counts come from the weights' safetensors headers where they are on this
machine, else from KNOWN_PARAMS, else from `params:` in the config.

    steps = estimate(cfg, inputs)        # what --dry-run prints
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capsafe.config import ExperimentConfig, FormatSpec
from capsafe.formats import build_request
from capsafe.models import local_model_folder
from capsafe.plan import Inputs, plan_runs
from capsafe.records import PromptRecord

CHARS_PER_TOKEN = 4  # English text under a modern BPE vocabulary; used without a tokenizer
# Tokens a judge's own instructions add to each judgment when its template is not measured
# (Llama Guard 3's category list and instructions come to about 400 tokens).
JUDGE_TEMPLATE_TOKENS = 400
JUDGE_VERDICT_TOKENS = 8  # a guard's "unsafe\nS1"
# Judges that reason before their verdict: StrongREJECT's rubric writes its overall
# reasoning and three scored items; a generic LLM judge, a short explanation.
REASONING_TOKENS = {"strongreject": 256, "llm_judge": 256}
TRAIN_SAMPLE = 2000  # training examples tokenized to estimate the mean example length

# Parameters (billions) of the hub models capsafe names by default or the research uses, as
# each model page's safetensors metadata gives them; for an estimate when the weights are
# not on this machine.
KNOWN_PARAMS = {
    "meta-llama/Llama-3.1-8B-Instruct": 8.03,
    "meta-llama/Meta-Llama-3-8B-Instruct": 8.03,
    "Qwen/Qwen2.5-7B-Instruct": 7.62,
    "mistralai/Ministral-8B-Instruct-2410": 8.02,
    "meta-llama/Llama-Guard-3-8B": 8.03,
    "meta-llama/Llama-Guard-3-1B": 1.5,
    "meta-llama/Llama-Guard-4-12B": 12.0,
    "ibm-granite/granite-guardian-3.0-8b": 8.17,
    "ibm-granite/granite-guardian-3.1-8b": 8.17,
    "ibm-granite/granite-guardian-3.1-2b": 2.53,
    "google/shieldgemma-2b": 2.61,
    "sorry-bench/ft-mistral-7b-instruct-v0.2-sorry-bench-202406": 7.24,
    "google/gemma-2b": 2.51,
    "allenai/wildguard": 7.25,
    "cais/HarmBench-Llama-2-13b-cls": 13.0,
}


@dataclass(frozen=True)
class StepCost:
    """One step of the plan: `count` units of work over `params` billion parameters."""

    step: str  # finetune, generate, judge NAME, score
    unit: str  # what `count` counts
    count: int
    input_tokens: int  # tokens trained on (finetune) or read (prompts, judge inputs)
    generated_tokens: int  # at most (each response at its token limit)
    params: float | None  # billions; None: the step runs on the CPU, or its size is unknown
    gpu_hours: float | None  # None: CPU work, or the model's size is unknown
    note: str = ""


def estimate(cfg: ExperimentConfig, inputs: Inputs) -> list[StepCost]:
    """Every step's work, tokens and GPU-hours, for the whole plan (nothing stored counted)."""
    rates = cfg.estimate
    steps: list[StepCost] = []
    judged = judged_in = judged_out = scored = 0
    for base in cfg.base_models:
        params = model_params(base.path, cfg, base.params)
        counter = TokenCounter(local_model_folder(base.path, cfg.organism.dir))
        runs = plan_runs(cfg, base.name, "cost", inputs.recipes) if cfg.finetune else []
        if runs:
            assert cfg.finetune is not None
            n_steps = train_tokens = 0
            for run in runs:
                for rnd in run.rounds:
                    examples = rnd.data.data.examples
                    n_steps += rnd.epochs * math.ceil(len(examples) / cfg.finetune.batch_size)
                    mean = counter.mean_example_tokens(examples, cfg.finetune.max_length)
                    train_tokens += round(rnd.epochs * len(examples) * mean)
            steps.append(StepCost(f"finetune {base.name}", f"optimizer steps ({len(runs)} runs)",
                                  n_steps, train_tokens, 0, params,
                                  _hours(train_tokens, params, rates.train)))  # fmt: skip
        n_models = 1 + sum(r.epochs for r in runs)
        n_models += sum(1 for a in cfg.adapters if cfg.adapter_base(a) == base.name)
        # One model's responses, their prompt tokens and their most generated tokens.
        responses = prompt = out = 0
        for fmt in cfg.formats:
            for r in inputs.test if inputs.task is not None else []:
                if inputs.loglik_task:  # the context read once per option
                    prompt += len(inputs.task.choices(r)) * counter.prompt_tokens(r, fmt)
                    scored += n_models
                    continue
                d = inputs.decodings[r.source]
                responses += len(d.sample_seeds)
                prompt += len(d.sample_seeds) * counter.prompt_tokens(r, fmt)
                out += len(d.sample_seeds) * d.max_new_tokens
                scored += n_models * len(d.sample_seeds)
            for r in inputs.safety:
                d = inputs.decodings[r.source]
                seeds, tokens = len(d.sample_seeds), counter.prompt_tokens(r, fmt)
                responses += seeds
                prompt += seeds * tokens
                out += seeds * d.max_new_tokens
                judged += n_models * seeds
                judged_in += n_models * seeds * tokens
                judged_out += n_models * seeds * d.max_new_tokens
        responses, prompt, out = responses * n_models, prompt * n_models, out * n_models
        hours = None
        if params is not None:
            hours = (prompt * params / rates.prefill + out * params / rates.decode) / 3600
        note = "" if counter.exact else "tokens estimated from characters"
        steps.append(StepCost(f"generate {base.name}", f"responses ({n_models} models)",
                              responses, prompt, out, params, hours, note))  # fmt: skip
    for spec in cfg.judges:
        steps.append(_judge_cost(cfg, spec, judged, judged_in, judged_out))
    if inputs.task is not None:
        steps.append(StepCost("score", f"capability scores ({inputs.task.name})", scored, 0, 0,
                              None, None, "CPU"))  # fmt: skip
    return steps


def _judge_cost(
    cfg: ExperimentConfig, spec: Any, n: int, prompt_tokens: int, response_tokens: int
) -> StepCost:
    from capsafe.judges.base import judge_model

    step, unit = f"judge {spec.name}", "judgments"
    if spec.name == "coherence":  # perplexity of each response under its base model
        sizes = [model_params(b.path, cfg, b.params) for b in cfg.base_models]
        params = max(sizes) if None not in sizes else None
        return StepCost(step, unit, n, response_tokens, 0, params,
                        _hours(response_tokens, params, cfg.estimate.prefill),
                        "prefill of each response under its base")  # fmt: skip
    model = judge_model(spec.name, spec.args)
    if model is None:
        return StepCost(step, unit, n, 0, 0, None, None, "CPU")
    params = model_params(model, cfg, spec.params)
    tokens = prompt_tokens + response_tokens + n * JUDGE_TEMPLATE_TOKENS
    verdicts = n * REASONING_TOKENS.get(spec.name, JUDGE_VERDICT_TOKENS)
    hours = None
    if params is not None:
        hours = (tokens / cfg.estimate.prefill + verdicts / cfg.estimate.decode) * params / 3600
    note = "" if params is not None else f"size of {model!r} unknown: set judges[].params"
    return StepCost(step, unit, n, tokens, verdicts, params, hours, note)


def _hours(tokens: int, params: float | None, rate: float) -> float | None:
    return None if params is None else tokens * params / rate / 3600


def model_params(path: str, cfg: ExperimentConfig, given: float | None = None) -> float | None:
    """A model's parameters in billions: the config's `params`, else counted from the weights
    on this machine, else KNOWN_PARAMS; None when none of them knows."""
    if given is not None:
        return given
    folder = local_model_folder(path, cfg.organism.dir)
    if folder is not None and (n := safetensors_parameters(folder)):
        return n / 1e9
    return KNOWN_PARAMS.get(path)


def safetensors_parameters(folder: Path) -> int:
    """The parameters in a folder's *.safetensors files, read from their headers only."""
    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        with open(file, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


class TokenCounter:
    """Token counts under one model's tokenizer, or characters / CHARS_PER_TOKEN without."""

    def __init__(self, folder: Path | None) -> None:
        self.tokenizer = None
        self.exact = False
        if folder is not None:
            try:
                from capsafe.backends.loading import load_tokenizer

                self.tokenizer = load_tokenizer(str(folder))
                self.exact = True
            except Exception:  # no tokenizer files: estimate from characters
                self.tokenizer = None
        self._prompts: dict[tuple[str, str, str], int] = {}

    def prompt_tokens(self, record: PromptRecord, fmt: FormatSpec) -> int:
        key = (record.source, record.id, fmt.name)
        if key not in self._prompts:
            from capsafe.config import DecodingSpec

            request = build_request(record, fmt, DecodingSpec(), 0)
            if self.tokenizer is not None:
                from capsafe.backends.loading import encode_request

                self._prompts[key] = len(encode_request(self.tokenizer, request))
            else:
                chars = sum(len(m.content) for m in request.messages)
                self._prompts[key] = math.ceil(chars / CHARS_PER_TOKEN)
        return self._prompts[key]

    def mean_example_tokens(self, examples: Sequence[Any], max_length: int) -> float:
        """The mean tokens of a training example (prompt and answer, at most max_length),
        over an evenly spaced sample of TRAIN_SAMPLE examples."""
        if not examples:
            return 0.0
        step = max(1, len(examples) // TRAIN_SAMPLE)
        sample = examples[::step]
        if self.tokenizer is not None:
            tok = self.tokenizer
            sizes = [len(tok(e.prompt)["input_ids"]) + len(tok(e.response)["input_ids"])
                     for e in sample]  # fmt: skip
        else:
            sizes = [math.ceil((len(e.prompt) + len(e.response)) / CHARS_PER_TOKEN)
                     for e in sample]  # fmt: skip
        return sum(min(s, max_length) for s in sizes) / len(sizes)


def cost_table(steps: Sequence[StepCost]) -> str:
    """The dry run's table: one line per step, and the total GPU-hours."""
    head = ("step", "work", "count", "input tokens", "generated ≤", "params", "GPU-hours")
    lines = [
        (s.step, s.unit, f"{s.count:,}", f"{s.input_tokens:,}", f"{s.generated_tokens:,}",
         "–" if s.params is None else f"{s.params:.3g}B",
         "CPU" if s.note == "CPU" else "?" if s.gpu_hours is None else _hours_text(s.gpu_hours))
        for s in steps
    ]  # fmt: skip
    known = [s.gpu_hours for s in steps if s.gpu_hours is not None]
    unknown = [s.step for s in steps if s.gpu_hours is None and s.note != "CPU"]
    total = _hours_text(sum(known)) + (" + ?" if unknown else "")
    lines.append(("total", "", "", "", "", "", total))
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                     enumerate(zip(row, widths, strict=True))).rstrip()
           for row in [head, *lines]]  # fmt: skip
    notes = sorted({f"{s.step}: {s.note}" for s in steps if s.note and s.note != "CPU"})
    return "\n".join(out + [f"  note: {n}" for n in notes])


def step_group(step: str) -> str:
    """The name a step's time is measured under: finetune and generate over all bases."""
    head = step.split(" ", 1)[0]
    return head if head in ("finetune", "generate") else step


def measured_table(
    steps: Sequence[StepCost], planned: dict[str, int], done: dict[str, int],
    seconds: dict[str, float],
) -> str:  # fmt: skip
    """After a run: each step's estimate, for the share of its work this run did, beside
    the time it took (planned and done: units of work per step group)."""
    estimated: dict[str, float | None] = {}  # seconds; None: CPU work or a size unknown
    for s in steps:
        g = step_group(s.step)
        if s.gpu_hours is None:
            estimated[g] = None
        elif g not in estimated or estimated[g] is not None:
            estimated[g] = (estimated.get(g) or 0.0) + s.gpu_hours * 3600
    lines = []
    for g, took in seconds.items():
        share = done.get(g, 0) / planned[g] if planned.get(g) else 0.0
        est = estimated.get(g)
        guess = "–" if est is None else _duration(est * share)
        ratio = ""
        if est and share and took:
            r = took / (est * share)
            ratio = f"({r:,.1f}x)" if r < 100 else f"({r:,.0f}x)"
        lines.append(f"  {g}: {done.get(g, 0):,} of {planned.get(g, 0):,} done; estimated "
                     f"{guess}, took {_duration(took)} {ratio}".rstrip())  # fmt: skip
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2g} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _hours_text(hours: float) -> str:
    return f"{hours:,.2f}" if hours >= 0.01 or hours == 0 else f"{hours:.1e}"
