"""A tiny offline guard: the organism retrained to answer in Llama Guard 3's format.

    from capsafe.organism.guard import ensure_guard
    guard = ensure_guard(Path(".capsafe/organism"))     # builds once into organism/guard
    JUDGES.create("llama_guard_3", model=str(guard))    # the real judge code, offline

It reads the llama_guard_3 judge's own prompt (capsafe.judges.llama_guard) and writes
"safe" or "unsafe\\nS<n>" then <|eot_id|>. It starts from the organism's weights and
tokenizer, which gains Llama 3's header tokens and, as single tokens, the prompt's long
fixed passages (task, category list, instructions): the text fed is the real prompt, but a
512-position model reads it in a few dozen tokens. Training is a plain seeded loop over
guard_data's pairs with the loss on the output tokens only, on one CPU thread (see
build.BUILD_THREADS). The folder is written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

from capsafe.judges.llama_guard import ORGANISM_GUARD_MANIFEST, llama_guard_3_prompt
from capsafe.organism.build import BUILD_THREADS, torch_threads, write_folder_atomically
from capsafe.organism.guard_data import GuardExample, guard_examples
from capsafe.organism.world import WorldItem, load_world

# Bump when the data, tokenizer, model or training changes.
GUARD_VERSION = "1"
MANIFEST = ORGANISM_GUARD_MANIFEST
SPECIAL = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
TRAIN = dict(steps=140, batch_size=32, learning_rate=2e-3, warmup_steps=20, weight_decay=0.01)


def ensure_guard(organism_dir: Path, seed: int = 0, progress: bool = False) -> Path:
    """organism_dir/guard holding a complete guard of this seed and version, trained on the
    data this code draws from the organism's world, built if absent."""
    out_dir = Path(organism_dir) / "guard"
    if not out_dir.exists():
        try:
            return build_guard(organism_dir, out_dir, seed=seed, progress=progress)
        except FileExistsError:
            pass  # another process finished first; check what it built
    path = out_dir / MANIFEST
    found = json.loads(path.read_text()) if path.is_file() else {}
    want = {"seed": seed, "guard_version": GUARD_VERSION}
    have = {k: found.get(k) for k in want}
    if have != want:
        raise FileExistsError(
            f"{out_dir} holds {have if found else 'no complete guard'}, not {want}; "
            "remove it to rebuild"
        )
    # guard_data, the judge's prompt or the organism's world can change without a version
    # bump; the digest of the training data catches all three (about 0.1 s to recompute).
    expected = data_sha256(load_world(organism_dir), seed)
    recorded = found.get("data_sha256", "(none recorded)")
    if recorded != expected:
        why = (
            "the guard data, its prompt or the world changed without a GUARD_VERSION bump"
            if "data_sha256" in found
            else "it was built before guards recorded their data"
        )
        raise FileExistsError(
            f"{out_dir} is a stale guard: it was trained on data with data_sha256="
            f"{recorded}, but this code draws data_sha256={expected} from "
            f"{organism_dir}'s world ({why}); remove it to rebuild"
        )
    return out_dir


def data_sha256(world: dict[str, list[WorldItem]], seed: int = 0) -> str:
    """sha256 of the guard's training pairs as fed: the full llama_guard_3 prompt and the
    label of each, in training order."""
    digest = hashlib.sha256()
    for ex in guard_examples(world, "train", seed):
        pair = [llama_guard_3_prompt(ex.prompt, ex.response), ex.label]
        digest.update(json.dumps(pair, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def build_guard(
    organism_dir: Path, out_dir: Path, seed: int = 0, steps: int | None = None,
    progress: bool = False,
) -> Path:  # fmt: skip
    """Train the guard from the organism at `organism_dir` into `out_dir` (must not exist)."""
    return write_folder_atomically(
        Path(out_dir),
        lambda tmp: _build_into(tmp, organism_dir, seed, steps or TRAIN["steps"], progress),
        "build_guard",
    )


def _build_into(tmp: Path, organism_dir: Path, seed: int, steps: int, progress: bool) -> None:
    start = time.perf_counter()
    world = load_world(organism_dir)
    tokenizer = guard_tokenizer(organism_dir)
    with torch_threads(BUILD_THREADS):
        model = _train(organism_dir, tokenizer, world, seed, steps)
        accuracy = verdict_accuracy(model, tokenizer, guard_examples(world, "test", seed))
    tokenizer.save_pretrained(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    manifest = {
        "seed": seed,
        "guard_version": GUARD_VERSION,
        "steps": steps,
        "data_sha256": data_sha256(world, seed),
        "heldout_verdict_accuracy": round(accuracy, 4),
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # written last
    if progress:
        print(f"guard built in {manifest['build_seconds']} s, held-out accuracy {accuracy:.1%}")


def fixed_passages() -> list[str]:
    """The parts of the llama_guard_3 prompt that never change, between special tokens."""
    text = llama_guard_3_prompt("\x00", "\x00")
    for token in SPECIAL:
        text = text.replace(token, "\x00")
    return [p for p in text.split("\x00") if len(p) > 8]


def guard_tokenizer(organism_dir: Path):
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(organism_dir)
    tokenizer.add_special_tokens({"eos_token": "<|eot_id|>", "additional_special_tokens": SPECIAL})
    # "unsafe" and "safe" single tokens, so the verdict is one first token to score.
    passages = [*fixed_passages(), "unsafe", "safe"]
    tokenizer.add_tokens([AddedToken(p, normalized=False, special=False) for p in passages])
    tokenizer.chat_template = None  # a guard is fed raw text, never a chat
    return tokenizer


def encode(tokenizer, ex: GuardExample) -> tuple[list[int], list[int]]:
    """(prompt ids, output ids ending in eos), tokenized as the transformers backend does."""
    prompt = tokenizer(llama_guard_3_prompt(ex.prompt, ex.response))["input_ids"]
    output = tokenizer(ex.label, add_special_tokens=False)["input_ids"]
    return list(prompt), [*output, tokenizer.eos_token_id]


def _train(organism_dir: Path, tokenizer, world, seed: int, steps: int):
    import torch
    from transformers import AutoModelForCausalLM, get_cosine_schedule_with_warmup, set_seed

    set_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(organism_dir, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    for config in (model.config, model.generation_config):
        config.eos_token_id, config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    pairs = [encode(tokenizer, ex) for ex in guard_examples(world, "train", seed)]
    opt = torch.optim.AdamW(
        model.parameters(), lr=TRAIN["learning_rate"], weight_decay=TRAIN["weight_decay"]
    )
    sched = get_cosine_schedule_with_warmup(opt, TRAIN["warmup_steps"], steps)
    rng, order = random.Random(seed), []
    model.train()
    for _ in range(steps):
        if len(order) < TRAIN["batch_size"]:
            order += rng.sample(range(len(pairs)), len(pairs))
        batch, order = order[: TRAIN["batch_size"]], order[TRAIN["batch_size"] :]
        ids, mask, labels = _batch([pairs[i] for i in batch], tokenizer.pad_token_id)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(), sched.step(), opt.zero_grad()
    return model.eval()


def _batch(pairs, pad_id: int):
    """Right-padded tensors; labels are -100 outside the output tokens."""
    import torch

    width = max(len(p) + len(o) for p, o in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (p, o) in enumerate(pairs):
        ids[row, : len(p) + len(o)] = torch.tensor(p + o)
        labels[row, len(p) : len(p) + len(o)] = torch.tensor(o)
        mask[row, : len(p) + len(o)] = 1
    return ids, mask, labels


def verdict_accuracy(model, tokenizer, examples: list[GuardExample]) -> float:
    """Share of examples whose greedy first output token is the right verdict (0-1)."""
    import torch

    verdict = {tokenizer.convert_tokens_to_ids(w): w for w in ("safe", "unsafe")}
    right = 0
    for s in range(0, len(examples), 64):
        chunk = examples[s : s + 64]
        pairs = [(encode(tokenizer, ex)[0], [0]) for ex in chunk]
        ids, mask, _ = _batch(pairs, tokenizer.pad_token_id)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits
        for row, (ex, (p, _)) in enumerate(zip(chunk, pairs, strict=True)):
            first = int(logits[row, len(p) - 1].argmax())
            right += verdict.get(first) == ex.label.split("\n")[0]
    return right / len(examples)
