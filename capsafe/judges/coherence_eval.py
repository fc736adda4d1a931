"""Calibrating the coherence judge's thresholds and measuring it on the labelled coherence set.

    items = build_coherence_set()
    cal = [i for i in items if i.part == "calibration"]
    judge = CoherenceJudge(calibrate(judge, cal), ...)
    report = evaluate_coherence(judge, [i for i in items if i.part == "held_out"])
    print(format_report(report))

Precision and recall are of the degenerate class: for each incoherent kind, recall is the
share of that kind judged incoherent, precision is over that kind plus the coherent-text
items (coherent and off_topic), so it falls with every coherent answer wrongly flagged.
off_topic is scored on relevance (relevant False) against the coherent items.

    python -m capsafe.judges.coherence_eval [--organism DIR] [--reference-model DIR]
        [--alpaca alpaca_eval/gpt4_1106_preview_model_outputs.json] [--no-builtin]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from capsafe.judges.coherence import CoherenceJudge, Thresholds
from capsafe.judges.coherence_seeds import SEEDS
from capsafe.judges.coherence_set import (
    DEGENERATE_KINDS,
    LabelledItem,
    alpaca_seeds,
    build_coherence_set,
    organism_seeds,
)

# (signal, Thresholds field, trips "above" or "below" the cut-off, the kinds it is for).
# Each cut-off is fitted against the kinds its signal is meant to catch: fitted against
# every kind, a loop signal would chase the odd truncated answer that happens to repeat.
_CALIBRATED = (
    ("repeats", "max_repeats", "above", {"loop"}),
    ("repeat_share", "max_repeat_share", "above", {"loop"}),
    ("compression", "min_compression", "below", {"loop"}),
    ("plain_share", "min_plain_share", "below", {"garbage"}),
    ("odd_share", "max_odd_share", "above", {"garbage"}),
    ("n_scripts", "max_scripts", "above", {"garbage"}),
    ("perplexity", "max_perplexity", "above", {"word_salad", "garbage"}),
)


class KindResult(NamedTuple):
    kind: str
    dimension: str  # "coherent" or "relevant": the verdict that should flag this kind
    n: int
    precision: float  # nan when nothing was flagged
    recall: float


class CoherenceReport(NamedTuple):
    kinds: tuple[KindResult, ...]  # one per degenerate kind
    incoherent: KindResult  # all incoherent kinds together
    false_alarm: float  # share of coherent answers judged incoherent or irrelevant
    n_items: int


def youden_cutoff(pos: Sequence[float], neg: Sequence[float], above: bool) -> float | None:
    """The cut-off maximising TPR - FPR (None without separation): the middle of the best
    run of midpoints between consecutive distinct values."""
    values = sorted(set(pos) | set(neg))
    cuts = [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    if not pos or not neg or not cuts:
        return None

    def j(c: float) -> float:
        trip = (lambda v: v > c) if above else (lambda v: v < c)
        return sum(map(trip, pos)) / len(pos) - sum(map(trip, neg)) / len(neg)

    scores = [j(c) for c in cuts]
    best = max(scores)
    if best <= 0:
        return None
    tied = [c for c, s in zip(cuts, scores, strict=True) if s >= best - 1e-12]
    return tied[len(tied) // 2]


def calibrate(
    judge: CoherenceJudge, items: Sequence[LabelledItem], base: Thresholds | None = None
) -> Thresholds:
    """Thresholds whose every signal cut-off best separates, on `items`, the kinds it is for
    from coherent text (coherent and off_topic answers); relevance separates off_topic from
    coherent. With the two apart this is the middle of the gap between them. Signals that
    separate nothing keep `base`'s value."""
    thresholds = base or judge.thresholds
    signals = judge.signals([i.item for i in items])
    neg = [s for s, i in zip(signals, items, strict=True) if i.coherent]
    for name, field, direction, kinds in _CALIBRATED:
        pos = [s for s, i in zip(signals, items, strict=True) if i.kind in kinds]
        p = [s[name] for s in pos if s[name] is not None]
        n = [s[name] for s in neg if s[name] is not None]
        if name == "perplexity":  # perplexities spread over orders of magnitude
            p, n = [math.log(v) for v in p], [math.log(v) for v in n]
        cut = youden_cutoff(p, n, above=direction == "above")
        if cut is None:
            continue
        value = math.exp(cut) if name == "perplexity" else cut
        value = math.floor(value) if name in ("n_scripts", "repeats") else round(value, 4)
        thresholds = replace(thresholds, **{field: value})
    on_topic = [
        s["relevance"]
        for s, i in zip(signals, items, strict=True)
        if i.kind == "coherent"
        if s["relevance"] is not None and not s["refusal_opening"]
    ]
    off_topic = [
        s["relevance"]
        for s, i in zip(signals, items, strict=True)
        if i.kind == "off_topic"
        if s["relevance"] is not None and not s["refusal_opening"]
    ]
    cut = youden_cutoff(off_topic, on_topic, above=False)
    if cut is not None:
        thresholds = replace(thresholds, min_relevance=round(cut, 4))
    return thresholds


def _result(kind: str, dimension: str, flagged: list[bool], is_pos: list[bool]) -> KindResult:
    tp = sum(f and p for f, p in zip(flagged, is_pos, strict=True))
    fp = sum(f and not p for f, p in zip(flagged, is_pos, strict=True))
    n_pos = sum(is_pos)
    precision = tp / (tp + fp) if tp + fp else math.nan
    return KindResult(kind, dimension, n_pos, precision, tp / n_pos if n_pos else math.nan)


def evaluate_coherence(judge: CoherenceJudge, items: Sequence[LabelledItem]) -> CoherenceReport:
    """Precision and recall of the judge's degenerate verdicts on `items`, per kind."""
    verdicts = judge.judge([i.item for i in items])
    incoherent = [v.coherent is False for v in verdicts]
    irrelevant = [v.relevant is False for v in verdicts]
    kinds = []
    for kind in DEGENERATE_KINDS:
        if kind == "off_topic":
            sub = [k for k, i in enumerate(items) if i.kind in ("off_topic", "coherent")]
            dimension, flags = "relevant", irrelevant
        else:
            sub = [k for k, i in enumerate(items) if i.kind == kind or i.coherent]
            dimension, flags = "coherent", incoherent
        kinds.append(
            _result(kind, dimension, [flags[k] for k in sub], [items[k].kind == kind for k in sub])
        )
    overall = _result("all_incoherent", "coherent", incoherent, [not i.coherent for i in items])
    clean = [k for k, i in enumerate(items) if i.kind == "coherent"]
    alarms = sum(incoherent[k] or irrelevant[k] for k in clean)
    false_alarm = alarms / len(clean) if clean else math.nan
    return CoherenceReport(tuple(kinds), overall, false_alarm, len(items))


def format_report(report: CoherenceReport) -> str:
    lines = [f"{'kind':<16}{'flagged by':<12}{'n':>5}{'precision':>11}{'recall':>8}"]
    for r in (*report.kinds, report.incoherent):
        lines.append(f"{r.kind:<16}{r.dimension:<12}{r.n:>5}{r.precision:>11.3f}{r.recall:>8.3f}")
    lines.append(f"coherent answers flagged (incoherent or irrelevant): {report.false_alarm:.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--organism", type=Path, help="add seeds from this organism's world")
    ap.add_argument("--alpaca", type=Path, help="add seeds from an AlpacaEval outputs JSON")
    ap.add_argument("--alpaca-limit", type=int, default=100)
    ap.add_argument("--reference-model", help="causal LM folder or hub id for perplexity")
    ap.add_argument(
        "--no-builtin",
        action="store_true",
        help="leave out the built-in seeds (e.g. the organism, whose perplexity on general "
        "English is high, scores only its own world)",
    )
    args = ap.parse_args(argv)
    if args.no_builtin and not (args.organism or args.alpaca):
        ap.error("--no-builtin needs --organism or --alpaca")
    seeds = [] if args.no_builtin else list(SEEDS)
    if args.organism:
        seeds += organism_seeds(args.organism)
    if args.alpaca:
        seeds += alpaca_seeds(args.alpaca, args.alpaca_limit)
    items = build_coherence_set(seeds, seed=args.seed)
    cal = [i for i in items if i.part == "calibration"]
    held = [i for i in items if i.part == "held_out"]
    judge = CoherenceJudge(Thresholds(), args.reference_model)
    print(f"{len(seeds)} seeds, {len(cal)} calibration items, {len(held)} held-out items")
    print("\nheld-out, default thresholds:\n" + format_report(evaluate_coherence(judge, held)))
    judge.thresholds = calibrate(judge, cal)
    print(f"\ncalibrated thresholds: {judge.thresholds}")
    print("\nheld-out, calibrated thresholds:\n" + format_report(evaluate_coherence(judge, held)))


if __name__ == "__main__":
    main()
