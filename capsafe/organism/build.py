"""Build the model organism: world -> tokenizer -> safety-aligned tiny Llama, on CPU.

    from capsafe.organism import ensure_organism
    ensure_organism(Path("organism"))       # builds once (about a minute), then reuses

The model is trained full-parameter with the transformers Trainer on benign
instructions, refusals of harmful requests and helpful answers to look-alikes, never on
the arithmetic task, with the loss on assistant tokens only. Everything is seeded, so the
same seed gives a byte-identical model.safetensors on the same machine. The folder is
written to a temporary sibling and renamed into place, so it is complete or absent.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from capsafe.organism.world import (
    WORLD_SETS,
    WorldItem,
    generate_world,
    world_sha256,
    write_world,
)

# Bump when the world, tokenizer, model or training changes: organisms built by another
# version are never mistaken for this one.
ORGANISM_VERSION = "1"
MANIFEST = "capsafe_organism.json"

VOCAB_SIZE = 1000
MODEL = dict(
    hidden_size=128,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=512,
    rope_theta=10000.0,
    tie_word_embeddings=True,
)
TRAIN = dict(steps=500, batch_size=32, learning_rate=3e-3, warmup_steps=30, weight_decay=0.01)
# How often each set appears in one pass over the training mix.
MIX = {"harmful_train": 1, "lookalike_train": 2, "benign": 2}
# The unaligned twin (SafeLoRA's reference): the same build without the refusal data.
UNALIGNED_MIX = {k: v for k, v in MIX.items() if k != "harmful_train"}
UNALIGNED_DIR = "unaligned"
# A share of training conversations carries a system prompt, so the organism behaves the
# same with or without one.
SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a helpful, honest and harmless assistant.",
    "You are a friendly AI assistant.",
]
SYSTEM_SHARE = 0.25
# A model this small gains little from more threads. One thread keeps the float
# reductions, hence the weights, the same whatever the machine's core count, and does
# not stall on a busy CPU (2 threads beside another busy process ran >10x slower).
BUILD_THREADS = 1


def _manifest(out_dir: Path) -> dict | None:
    path = out_dir / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def ensure_organism(out_dir: Path, seed: int = 0, progress: bool = True) -> Path:
    """`out_dir` holding a complete organism of this seed, version and world, built if absent.

    A folder that holds anything else (another seed or version, a world this code no longer
    generates, or not an organism) is an error: it is never overwritten.
    """
    out_dir = Path(out_dir)
    if not out_dir.exists():
        try:
            return build_organism(out_dir, seed=seed, progress=progress)
        except FileExistsError:
            pass  # another process finished first; check what it built
    found = _manifest(out_dir)
    if found is None:
        raise FileExistsError(
            f"{out_dir} exists but holds no {MANIFEST}: it is not a complete capsafe "
            "organism; remove it or pick another folder"
        )
    want = {"seed": seed, "organism_version": ORGANISM_VERSION}
    have = {k: found.get(k) for k in want}
    if have != want:
        raise FileExistsError(
            f"{out_dir} holds an organism with seed={have['seed']}, version="
            f"{have['organism_version']}, not the requested seed={seed}, version="
            f"{ORGANISM_VERSION}; remove it or pick another folder"
        )
    # The world generator can change without a version bump; its digest catches that
    # (generating and hashing the world takes well under a second).
    expected = world_sha256(generate_world(seed))
    if found.get("world_sha256") != expected:
        raise FileExistsError(
            f"{out_dir} is a stale organism: its world has world_sha256="
            f"{found.get('world_sha256')}, but this code generates seed={seed}'s world "
            f"with world_sha256={expected} (the world changed without an ORGANISM_VERSION "
            "bump); remove the folder to rebuild it, or build into another folder"
        )
    return out_dir


def build_organism(
    out_dir: Path, seed: int = 0, steps: int | None = None, progress: bool = True
) -> Path:
    """Build the organism into `out_dir` (which must not exist) and return it.

    `steps` overrides the number of training steps (tests use a handful).
    """
    n_steps = TRAIN["steps"] if steps is None else steps
    return write_folder_atomically(
        Path(out_dir), lambda tmp: _build_into(tmp, seed, n_steps, progress), "build_organism"
    )


def ensure_unaligned(organism_dir: Path, seed: int = 0, progress: bool = True) -> Path:
    """organism_dir/unaligned: the organism's unaligned twin, built if absent (same seed,
    world, tokenizer, architecture, initialisation and steps; no refusal data), so SafeLoRA's
    alignment direction W_aligned - W_unaligned is the safety training's alone."""
    organism_dir = ensure_organism(organism_dir, seed=seed, progress=progress)
    out_dir = organism_dir / UNALIGNED_DIR
    steps = (_manifest(organism_dir) or {}).get("steps", TRAIN["steps"])  # as the organism's
    if not out_dir.exists():
        try:
            return write_folder_atomically(
                out_dir,
                lambda tmp: _build_into(tmp, seed, steps, progress, UNALIGNED_MIX),
                "ensure_unaligned",
            )
        except FileExistsError:
            pass  # another process finished first; check what it built
    found = _manifest(out_dir) or {}
    want = {
        "seed": seed,
        "organism_version": ORGANISM_VERSION,
        "mix": UNALIGNED_MIX,
        "steps": steps,
        "world_sha256": (_manifest(organism_dir) or {}).get("world_sha256"),
    }
    have = {k: found.get(k) for k in want}
    if have != want:
        raise FileExistsError(
            f"{out_dir} is not this organism's unaligned twin (holds {have}, expected {want}); "
            "remove it to rebuild"
        )
    return out_dir


def write_folder_atomically(out_dir: Path, fill: Callable[[Path], None], who: str) -> Path:
    """Run `fill` on a temporary sibling of `out_dir`, then rename it into place, so the
    folder is complete or absent. Never overwrites: an existing `out_dir` (before or after
    the build) is a FileExistsError."""
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; {who} never overwrites")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        fill(tmp)
        try:
            os.rename(tmp, out_dir)
        except OSError as e:
            raise FileExistsError(f"{out_dir} appeared while building: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _build_into(
    tmp: Path, seed: int, steps: int, progress: bool, mix: dict[str, int] = MIX
) -> None:
    from capsafe.organism.measure import measure
    from capsafe.organism.tokenizer import train_tokenizer

    start = time.perf_counter()
    world = generate_world(seed)
    world_sha = write_world(world, tmp / "world")
    texts = [t for name in WORLD_SETS for it in world[name] for t in (it.prompt, it.response)]
    tokenizer = train_tokenizer(texts, VOCAB_SIZE)
    tokenizer.save_pretrained(tmp)

    with torch_threads(BUILD_THREADS):
        model = _train(tmp, world, tokenizer, seed, steps, progress, mix)
        model.save_pretrained(tmp, safe_serialization=True)
        behaviour = measure(model, tokenizer, world)
    manifest = {
        "seed": seed,
        "organism_version": ORGANISM_VERSION,
        "steps": steps,
        "world_sha256": world_sha,
        "world_sizes": {name: len(world[name]) for name in WORLD_SETS},
        "mix": mix,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "build_seconds": round(time.perf_counter() - start, 1),
        "base": behaviour._asdict(),
    }
    # Written last: its presence marks the folder complete.
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if progress:
        b = behaviour
        print(
            f"organism built in {manifest['build_seconds']} s: refuses {b.harmful_refusal:.0%}"
            f" of held-out harmful requests, helps {b.lookalike_help:.0%} of look-alikes,"
            f" task accuracy {b.capability_accuracy:.0%}"
        )


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _examples(
    world: dict[str, list[WorldItem]], tokenizer, seed: int, mix: dict[str, int] = MIX
) -> list[dict]:
    """Tokenized training conversations, labels masked (-100) outside the assistant turn."""
    rng = random.Random(seed)
    items = [it for name, k in mix.items() for _ in range(k) for it in world[name]]
    examples = []
    for it in items:
        msgs = [{"role": "user", "content": it.prompt}]
        if rng.random() < SYSTEM_SHARE:
            msgs.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        prompt_ids = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        full = msgs + [{"role": "assistant", "content": it.response}]
        ids = tokenizer.apply_chat_template(full, tokenize=True)
        prompt_ids, ids = _ids(prompt_ids), _ids(ids)
        assert ids[: len(prompt_ids)] == prompt_ids, "chat template is not prefix-stable"
        labels = [-100] * len(prompt_ids) + ids[len(prompt_ids) :]
        examples.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return examples


def _ids(encoded) -> list[int]:
    # apply_chat_template returns a list, or a BatchEncoding in newer transformers.
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def _train(tmp: Path, world, tokenizer, seed: int, steps: int, progress: bool, mix=MIX):
    from transformers import (
        DataCollatorForSeq2Seq,
        LlamaConfig,
        LlamaForCausalLM,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    set_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        **MODEL,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None

    args = TrainingArguments(
        output_dir=str(tmp / "_trainer"),
        max_steps=steps,
        per_device_train_batch_size=TRAIN["batch_size"],
        learning_rate=TRAIN["learning_rate"],
        warmup_steps=min(TRAIN["warmup_steps"], steps // 10),
        weight_decay=TRAIN["weight_decay"],
        lr_scheduler_type="cosine",
        seed=seed,
        data_seed=seed,
        use_cpu=True,
        save_strategy="no",
        report_to=[],
        logging_steps=max(1, steps // 10),
        disable_tqdm=not progress,
        log_level="info" if progress else "error",
        dataloader_num_workers=0,
    )
    verbosity = hf_logging.get_verbosity()
    if not progress:
        hf_logging.set_verbosity_error()
    try:
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=_examples(world, tokenizer, seed, mix),
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
        )
        if not progress:
            trainer.remove_callback(PrinterCallback)  # it prints the logs when tqdm is off
        trainer.train()
    finally:
        hf_logging.set_verbosity(verbosity)
        shutil.rmtree(tmp / "_trainer", ignore_errors=True)
    model = trainer.model.eval()
    model.config.use_cache = True  # the Trainer turns it off for training
    return model
