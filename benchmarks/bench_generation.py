"""Batched generation against one model.generate() call per prompt, on the same model.

Times the transformers backend (left-padded batches of similar prompt lengths) against
a plain loop of single-prompt model.generate() calls with the same decoding settings,
checks that their greedy outputs are identical (exit status 1 if any differs), and
prints both wall times and the speed-up; then the same for the backend's continuous
batching (batching: continuous, transformers' generate_batch) against static batching.
Prompts are the organism's harmful, look-alike and capability test prompts when the model
folder has a world/ folder, else a few built-in ones. Without --model the organism is used
(built into .capsafe/organism if absent, about a minute).

    python benchmarks/bench_generation.py
    python benchmarks/bench_generation.py --model DIR --n 128 --max-new-tokens 48 --batch-size 64
    python benchmarks/bench_generation.py --threads 1      # torch threads (default: torch's)
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import chain, cycle, islice, zip_longest
from pathlib import Path

from capsafe.backends.loading import encode_request
from capsafe.backends.transformers_backend import (
    TransformersBackend,
    completion_output,
    generation_config,
)
from capsafe.records import GenerationOutput, GenerationRequest, Message

BUILT_IN = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "How do I bake bread?",
    "Explain photosynthesis to a child in two sentences.",
    "How do I compute 17 plus 25?",
    "List three uses of a paperclip.",
    "Why is the sky blue?",
    "Translate 'good morning' into Spanish.",
]


def organism_dir() -> Path:
    try:
        from capsafe.organism import ensure_organism
    except ImportError as err:
        sys.exit(f"no --model given and the organism is unavailable ({err}); pass --model DIR")
    return ensure_organism(Path(".capsafe/organism"))


def prompts_for(model_dir: Path, n: int) -> tuple[list[str], str]:
    """n prompts, and where they came from. Organism sets are interleaved so that any n
    mixes refusals, look-alike answers and arithmetic."""
    if (model_dir / "world").is_dir():
        from capsafe.organism import load_world

        world = load_world(model_dir)
        sets = ["harmful_test", "lookalike_test", "capability_test"]
        mixed = [it.prompt for it in chain(*zip_longest(*(world[s] for s in sets))) if it]
        return mixed[:n], "organism world: " + " + ".join(sets)
    return list(islice(cycle(BUILT_IN), n)), "built-in prompts"


def one_at_a_time(backend: TransformersBackend, requests: list[GenerationRequest]):
    """The baseline: one unpadded model.generate() per request, same decoding settings."""
    import torch

    outputs: list[GenerationOutput] = []
    for r in requests:
        ids = torch.tensor([encode_request(backend.tokenizer, r)], device=backend.model.device)
        config = generation_config(r, backend.eos_ids, backend.pad_id)
        with torch.inference_mode():
            out = backend.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
            )
        tokens = out[0, ids.shape[1] :].tolist()
        outputs.append(completion_output(backend.tokenizer, backend.eos_ids, tokens, ids.shape[1]))
    return outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model folder or hub id (default: organism)")
    parser.add_argument("--n", type=int, default=128, help="number of prompts")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=64)  # the quick start's setting
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timing rounds; the fastest of each side counts"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    model_dir = args.model or organism_dir()
    backend = TransformersBackend.load(
        str(model_dir), batch_size=args.batch_size, device=args.device
    )
    texts, origin = prompts_for(model_dir, args.n)
    chat = bool(getattr(backend.tokenizer, "chat_template", None))
    requests = [
        GenerationRequest(
            messages=(Message("user", t),),
            use_chat_template=chat,
            max_new_tokens=args.max_new_tokens,
        )
        for t in texts
    ]
    print(f"model {model_dir} on {backend.model.device}, {len(requests)} prompts ({origin})")
    print(
        f"greedy, max_new_tokens {args.max_new_tokens}, batch_size {args.batch_size}, "
        f"{torch.get_num_threads()} torch threads, best of {args.repeats} rounds"
    )

    backend.generate(requests[:2])  # warm-up: first calls pay for lazy initialisation
    one_at_a_time(backend, requests[:2])

    # Alternate the two sides and keep each one's fastest round: on a shared machine a
    # burst of someone else's work then slows a round, not the result.
    continuous = TransformersBackend(
        backend.model, backend.tokenizer, batch_size=args.batch_size, batching="continuous"
    )
    continuous.generate(requests[:2])
    t_batched = t_single = t_continuous = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        batched = backend.generate(requests)
        t_batched = min(t_batched, time.perf_counter() - start)
        start = time.perf_counter()
        single = one_at_a_time(backend, requests)
        t_single = min(t_single, time.perf_counter() - start)
        start = time.perf_counter()
        paged = continuous.generate(requests)
        t_continuous = min(t_continuous, time.perf_counter() - start)

    tokens = sum(o.n_completion_tokens for o in single)
    print(f"one generate() per prompt: {t_single:8.2f} s  ({tokens / t_single:8.1f} tokens/s)")
    print(f"batched backend:           {t_batched:8.2f} s  ({tokens / t_batched:8.1f} tokens/s)")
    print(
        f"continuous batching:       {t_continuous:8.2f} s  ({tokens / t_continuous:8.1f} tokens/s)"
    )
    print(f"speed-up (batched/loop): {t_single / t_batched:.1f}x; "
          f"continuous/static time: {t_continuous / t_batched:.2f}x")  # fmt: skip

    failed = 0
    for name, outputs in (("batched", batched), ("continuous", paged)):
        differ = [i for i, (a, b) in enumerate(zip(outputs, single, strict=True)) if a != b]
        if differ:
            failed = 1
            print(f"FAIL: {len(differ)} of {len(requests)} {name} greedy outputs differ, e.g.:")
            for i in differ[:3]:
                print(f"  prompt {texts[i]!r}\n    {name} {outputs[i]}\n    single  {single[i]}")
    if not failed:
        print(f"all {len(requests)} greedy outputs identical (batched, continuous, one by one)")
    return failed


if __name__ == "__main__":
    sys.exit(main())
