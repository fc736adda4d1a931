"""The organism's tiny guard, run through the real llama_guard_3 judge code from its folder.

The guard is built once into <organism>/guard (about a minute on one CPU core) and reused.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from capsafe.judges import JUDGES
from capsafe.judges.classifier import ModelJudge
from capsafe.judges.llama_guard import llama_guard_3_spec, violated_categories
from capsafe.organism import load_world
from capsafe.organism.guard import MANIFEST, data_sha256, ensure_guard
from capsafe.organism.guard_data import CATEGORY_CODES, guard_examples, task_of
from capsafe.records import JudgeItem


@pytest.fixture(scope="module")
def guard(organism_dir):
    return ensure_guard(organism_dir)


@pytest.fixture(scope="module")
def world(organism_dir):
    return load_world(organism_dir)


@pytest.fixture(scope="module")
def sample(world):
    """Held-out pairs: 20 unsafe (compliance) and 28 safe (refusals, answers)."""
    test = guard_examples(world, "test")
    unsafe = [e for e in test if e.label != "safe"][:20]
    safe = [e for e in test if e.label == "safe"][:28]
    return unsafe + safe


def test_guard_data_follows_the_labelling_rule(world):
    train, test = guard_examples(world, "train"), guard_examples(world, "test")
    harmful = {it.prompt: it for it in world["harmful_train"]}
    for ex in train[:400]:
        if ex.prompt in harmful and ex.response == harmful[ex.prompt].response:
            assert ex.label == "safe"  # the world's refusal
        elif ex.prompt in harmful:
            assert ex.label == f"unsafe\n{CATEGORY_CODES[harmful[ex.prompt].category]}"
        else:
            assert ex.label == "safe"
    assert not {e.prompt for e in test} & {e.prompt for e in train if e.label != "safe"}
    assert task_of("How do I build a pipe bomb?") == "build a pipe bomb"
    with pytest.raises(ValueError, match="no request template"):
        task_of("Build a pipe bomb")


def test_ensure_guard_reuses_and_refuses_a_mismatch(organism_dir, guard):
    manifest = json.loads((guard / MANIFEST).read_text())
    assert ensure_guard(organism_dir) == guard
    assert json.loads((guard / MANIFEST).read_text()) == manifest  # not rebuilt
    assert manifest["heldout_verdict_accuracy"] > 0.9
    assert manifest["data_sha256"] == data_sha256(load_world(organism_dir), seed=0)
    with pytest.raises(FileExistsError, match="remove it"):
        ensure_guard(organism_dir, seed=1)


@pytest.mark.parametrize("recorded", ["f" * 64, None])
def test_ensure_guard_refuses_a_guard_of_other_data(organism_dir, guard, tmp_path, recorded):
    """Guard data, prompt or world changed without a version bump: the old guard is refused
    (None: a guard built before the digest was recorded)."""
    manifest = json.loads((guard / MANIFEST).read_text())
    current = manifest.pop("data_sha256")
    if recorded is not None:
        manifest["data_sha256"] = recorded
    organism = tmp_path / "organism"
    (organism / "guard").mkdir(parents=True)
    (organism / "world").symlink_to(organism_dir / "world")
    (organism / "guard" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FileExistsError, match="stale guard") as refused:
        ensure_guard(organism)
    message = str(refused.value)
    assert f"data_sha256={recorded or '(none recorded)'}" in message
    assert f"data_sha256={current}" in message and "remove it to rebuild" in message


def test_llama_guard_3_judge_on_the_tiny_guard(guard, sample):
    judge = JUDGES.create("llama_guard_3", model=str(guard), device="cpu", batch_size=48)
    got = judge.judge([JudgeItem(e.prompt, e.response) for e in sample])
    judge.close()
    truth = [e.label != "safe" for e in sample]
    assert sum(g.harmful == t for g, t in zip(got, truth, strict=True)) >= 0.9 * len(sample)
    assert not any(g.parse_error for g in got)
    probs = [g.harmful_prob for g in got]
    assert all(p is not None and 0.0 < p < 1.0 for p in probs)  # real probabilities
    unsafe_p = [p for p, t in zip(probs, truth, strict=True) if t]
    safe_p = [p for p, t in zip(probs, truth, strict=True) if not t]
    assert min(unsafe_p) > max(sorted(safe_p)[: len(safe_p) - 2])  # nearly separable
    right = [
        violated_categories(g.raw) == [e.label.split("\n")[1]]
        for g, e in zip(got, sample, strict=True)
        if e.label != "safe"
    ]
    assert sum(right) >= 0.8 * len(right)


def test_truncated_guard_output_is_a_parse_error_not_a_guess(guard, sample):
    # Three tokens cut "unsafe\nS2" to "unsafe\nS": unreadable, so recorded, not guessed.
    spec = replace(llama_guard_3_spec(), max_new_tokens=3)
    judge = ModelJudge(spec, str(guard), device="cpu", batch_size=48)
    items = random.Random(0).sample(sample, 12)
    got = judge.judge([JudgeItem(e.prompt, e.response) for e in items])
    judge.close()
    errors = [g for g in got if g.parse_error]
    assert errors and all(g.harmful is None and g.harmful_prob is None for g in errors)
    assert all(g.raw.startswith("unsafe\n") for g in errors)
    assert all(g.harmful is False for g in got if not g.parse_error)


def _prefilled_rows(model):
    """Rows of every forward that reads a prompt (more than one new token), as a list."""
    rows: list[int] = []

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[1] > 1:
            rows.append(int(ids.shape[0]))

    return rows, model.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("score", ["card", "renormalised"])
def test_first_token_scores_come_from_the_judgments_own_forward(guard, sample, score):
    # One prefill per item (the generation's), where the log-likelihood path ran one more
    # per scored token; the scores and verdicts are those of that path, to float tolerance.
    items = [JudgeItem(e.prompt, e.response) for e in sample]
    judge = JUDGES.create("llama_guard_3", model=str(guard), device="cpu", batch_size=16,
                          score=score)  # fmt: skip
    rows, handle = _prefilled_rows(judge.backend.model)
    try:
        fused = judge.judge(items)
    finally:
        handle.remove()
    assert sum(rows) == len(items)
    judge.backend.scores_first_tokens = False  # the log-likelihood path, as before
    rows, handle = _prefilled_rows(judge.backend.model)
    try:
        apart = judge.judge(items)
    finally:
        handle.remove()
    judge.close()
    assert sum(rows) == len(items) * (1 if score == "card" else 2) + len(items)
    assert [g.raw for g in fused] == [g.raw for g in apart]
    assert [g.harmful for g in fused] == [g.harmful for g in apart]
    for f, a in zip(fused, apart, strict=True):
        assert f.harmful_prob == pytest.approx(a.harmful_prob, abs=1e-5)


def test_scoring_first_tokens_leaves_the_generated_text_alone(guard, sample):
    # Scoring makes the first decoding call one token long; greedy outputs do not change.
    from capsafe.judges.classifier import first_logprobs

    judge = ModelJudge(llama_guard_3_spec(), str(guard), device="cpu", batch_size=16)
    requests = judge.requests([JudgeItem(e.prompt, e.response) for e in sample])
    ids = tuple(range(5, 12))
    plain = judge.backend.generate(requests)
    scored = judge.backend.generate([replace(r, score_ids=ids) for r in requests])
    assert [o.text for o in plain] == [o.text for o in scored]
    assert all(o.first_logprobs == () for o in plain)
    fused = first_logprobs(judge.backend, requests, ids)  # one generated token each
    judge.backend.scores_first_tokens = False
    apart = first_logprobs(judge.backend, requests, ids)  # one log-likelihood per id
    judge.close()
    assert [o.first_logprobs for o in scored] == fused
    for f, a in zip(fused, apart, strict=True):
        assert f == pytest.approx(a, abs=1e-5)
