"""The offline judges against human labels no one here wrote: GPTFuzz's labelled jailbreak
responses cross-validated with whole questions held out (embedding_harm, the one judge
fitted on GPTFuzz, is refitted on the other folds, so no fold is judged by weights that
saw it), GPTFuzz's own held-out split when given, and the embedding refusal judge
validated with whole sources held out (each family of capsafe's examples; GPTFuzz and
XSTest, never trained on). XSTest and HarmBench's validation set are measured by
`capsafe judges audit` (its presets); docs/offline-judges.md has every number and command.

    python benchmarks/offline_judges.py                               # ../shared/datasets
    python benchmarks/offline_judges.py --guard .capsafe/organism/guard \\
        --gptfuzz-eval GPTFuzz/datasets/responses_labeled/evaluate.csv

Embeddings are cached under --cache-dir (default ~/.cache/capsafe/embeddings) by the
sha256 of the texts, so a rerun embeds nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from capsafe.analysis.audit import audit_judges
from capsafe.audit.labelled import load_preset
from capsafe.judges import JUDGES, embedding, embedding_harm
from capsafe.judges.embedding_fit import features, fit_examples
from capsafe.judges.embeddings import CACHE_ENV
from capsafe.judges.refusal_examples import refusal_examples
from capsafe.records import JudgeItem

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
FOLDS = 5


def cached_features(responses: Sequence[str], head_chars: int | None) -> np.ndarray:
    """What the embedding judges embed of these responses (cached: see main)."""
    return features(responses, head_chars)


def fold_of(groups: Sequence[str]) -> np.ndarray:
    """Fold of each item: whole groups (questions) go to one fold, in sorted order."""
    names = sorted(set(groups), key=lambda g: (len(g), g))
    fold = {g: i % FOLDS for i, g in enumerate(names)}
    return np.array([fold[g] for g in groups])


def table(title: str, truth: Sequence[int], labels: dict[str, Sequence[int | None]]) -> None:
    rows = audit_judges([[t] for t in truth], labels, n_boot=1000)
    print(f"\n{title} (n={len(truth)}, positive share {np.mean(truth):.3f})")
    print(f"{'judge':<34}{'n (errors)':<12}{'accuracy':<24}{'F1':<24}{'kappa':<24}")
    for r in rows:
        cells = [
            "undefined" if np.isnan(e.value) else f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"
            for e in (r.accuracy, r.f1, r.kappa)
        ]
        scored = f"{r.n} ({r.parse_errors})"
        print(f"{r.judge:<34}{scored:<12}" + "".join(f"{c:<24}" for c in cells))


def gptfuzz_cv(args: argparse.Namespace, guard) -> None:
    rows = embedding_harm.read_gptfuzz(args.gptfuzz)
    truth = [int(e.label) for e in rows]
    texts = [e.text for e in rows]
    items = [JudgeItem("", t) for t in texts]
    folds = fold_of([e.group for e in rows])
    labels: dict[str, list[int | None]] = {}
    # The refusal judges never saw GPTFuzz: read as harm by compliance (not refused).
    for name in ("keyword_refusal", "embedding_refusal"):
        verdicts = JUDGES.create(name).judge(items)
        labels[f"{name} (not refused)"] = [int(v.refusal == "none") for v in verdicts]
    # embedding_harm refitted on the other folds' questions for each fold.
    x = cached_features(texts, embedding_harm.RECIPE.head_chars)
    harm = np.zeros(len(rows), dtype=int)
    for k in range(FOLDS):
        tr, te = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        clf = fit_examples([rows[i] for i in tr], embedding_harm.RECIPE, x=x[tr])
        harm[te] = (clf.probabilities_of(x[te])[:, 1] >= 0.5).astype(int)
    labels["embedding_harm (refit per fold)"] = harm.tolist()
    table(
        f"GPTFuzz train.csv, {FOLDS}-fold cross-validation holding out whole questions "
        "(harmful = 1)",
        truth,
        labels,
    )
    if guard is not None:  # the tiny guard is slow on CPU: every Nth response
        keep = list(range(0, len(rows), args.guard_every))
        asked = questions(args)
        verdicts = guard.judge([JudgeItem(asked[i], texts[i]) for i in keep])
        table(
            f"GPTFuzz train.csv, every {args.guard_every}th response, the organism guard",
            [truth[i] for i in keep],
            {"organism guard (llama_guard_3)": [
                None if v.parse_error else int(bool(v.harmful)) for v in verdicts
            ]},
        )  # fmt: skip


def questions(args: argparse.Namespace) -> list[str]:
    from capsafe.data.files import read_rows

    text = {
        r.text("index"): r.text("text")
        for r in read_rows(args.gptfuzz.parent / "question_list.csv")
    }
    return [text[e.group.removeprefix("q")] for e in embedding_harm.read_gptfuzz(args.gptfuzz)]


def gptfuzz_eval(path: Path) -> None:
    rows = embedding_harm.read_gptfuzz(path)
    items = [JudgeItem("", e.text) for e in rows]
    labels = {
        "keyword_refusal (not refused)": [
            int(j.refusal == "none") for j in JUDGES.create("keyword_refusal").judge(items)
        ],
        "embedding_refusal (not refused)": [
            int(j.refusal == "none") for j in JUDGES.create("embedding_refusal").judge(items)
        ],
        "embedding_harm": [
            int(bool(j.harmful)) for j in JUDGES.create("embedding_harm").judge(items)
        ],
    }
    table(
        f"GPTFuzz evaluate.csv (questions 80-99, never trained on): {path}",
        [int(e.label) for e in rows],
        labels,
    )


def refusal_sources(args: argparse.Namespace) -> None:
    """embedding_refusal validated with whole sources held out: each family of capsafe's
    examples scored by a fit on the others; and, per window, a fit on all of them scored
    on GPTFuzz (harm by compliance), which chose the window, and on XSTest, which chose
    nothing and is never trained on."""
    own = refusal_examples()
    families = sorted({e.group for e in own})
    x_own = cached_features([e.text for e in own], embedding.RECIPE.head_chars)
    held: list[int] = [0] * len(own)
    for fam in families:
        tr = [i for i, e in enumerate(own) if e.group != fam]
        te = [i for i, e in enumerate(own) if e.group == fam]
        clf = fit_examples([own[i] for i in tr], embedding.RECIPE, x=x_own[tr])
        pred = np.array(clf.classes)[clf.probabilities_of(x_own[te]).argmax(axis=1)]
        for i, p in zip(te, pred, strict=True):
            held[i] = int(p != "none")
    table(
        "embedding_refusal on capsafe's examples, each family held out ("
        + ", ".join(f.removeprefix("capsafe/") for f in families)
        + "; refused = 1)",
        [int(e.label != "none") for e in own],
        {"leave one family out": held},
    )
    gf = embedding_harm.read_gptfuzz(args.gptfuzz)
    xs = load_preset("xstest", args.xstest)
    harmful = [int(e.label) for e in gf]
    refused = [int(i.gold != "none") for i in xs.items]
    on_gf, on_xs = {}, {}
    for window in (150, 300, None):
        recipe = replace(embedding.RECIPE, head_chars=window)
        x_train = cached_features([e.text for e in own], window)
        clf = fit_examples(own, recipe, x=x_train)
        for texts, out, read in (
            ([e.text for e in gf], on_gf, lambda p: int(p == "none")),
            ([i.response for i in xs.items], on_xs, lambda p: int(p != "none")),
        ):
            x = cached_features(texts, window)
            pred = np.array(clf.classes)[clf.probabilities_of(x).argmax(axis=1)]
            out[f"window {window or 'all'}"] = [read(p) for p in pred]
    table("embedding_refusal per window, on GPTFuzz (harmful = not refused)", harmful, on_gf)
    table("embedding_refusal per window, on XSTest (refused = full or partial)", refused, on_xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gptfuzz", type=Path, default=SHARED / "gptfuzz" / "train.csv")
    ap.add_argument("--xstest", type=Path, default=SHARED / "xstest")
    ap.add_argument("--gptfuzz-eval", type=Path, help="GPTFuzz's evaluate.csv (not in shared)")
    ap.add_argument("--guard", help="the organism guard's folder, to score it on GPTFuzz too")
    ap.add_argument("--guard-every", type=int, default=5, help="score the guard on every Nth")
    ap.add_argument("--cache-dir", type=Path, default=Path("~/.cache/capsafe/embeddings"))
    args = ap.parse_args()
    # Every embedding here and in the judges goes through the cache: a rerun embeds nothing.
    os.environ.setdefault(CACHE_ENV, str(args.cache_dir.expanduser()))
    guard = JUDGES.create("llama_guard_3", model=args.guard) if args.guard else None
    gptfuzz_cv(args, guard)
    refusal_sources(args)
    if args.gptfuzz_eval:
        gptfuzz_eval(args.gptfuzz_eval)


if __name__ == "__main__":
    main()
