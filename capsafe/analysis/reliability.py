"""Judge reliability on the experiment's own outputs (issue 4f).

Over safety responses, for one judged field (unsafe by default: harmful compliance, each
judge read by its harmful label or, lacking one, by compliance; or harmful, or refusal): the
pairwise
Cohen's kappa between judges, Fleiss' kappa (responses every judge labelled) and
Krippendorff's alpha (all responses, gaps allowed), overall and split by a coherence
judge's label; and each judge's label distribution on coherent versus incoherent responses
(judges are known to label incoherent text unreliably).

Example:
    rel = judge_reliability(rows, field="unsafe", coherence_judge="coherence")
    [(s.split, s.fleiss, s.krippendorff) for s in rel.summaries]
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from capsafe.analysis.agreement import (
    PairAgreement,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_kappa,
)
from capsafe.analysis.labels import judge_fields, judge_label, unsafe_value
from capsafe.analysis.rows import ExperimentRows

ALL, COHERENT, INCOHERENT = "all", "coherent", "incoherent"


@dataclass(frozen=True)
class AgreementSummary:
    split: str  # all, coherent, incoherent
    n_items: int  # responses at least two judges labelled
    n_complete: int  # responses every judge labelled (Fleiss' kappa is over these)
    pairwise: list[PairAgreement]
    fleiss: float
    krippendorff: float


@dataclass(frozen=True)
class LabelDistribution:
    judge: str
    split: str
    counts: dict[str, int]  # label -> responses
    parse_errors: int


@dataclass(frozen=True)
class Reliability:
    field: str
    judges: list[str]
    summaries: list[AgreementSummary]
    distributions: list[LabelDistribution]


def _summary(split: str, judges: list[str], items: list[dict[str, object]]) -> AgreementSummary:
    rows = [[it.get(j) for j in judges] for it in items]
    rows = [r for r in rows if sum(x is not None for x in r) >= 2]
    complete = [r for r in rows if all(x is not None for x in r)]
    labels = {j: [r[i] for r in rows] for i, j in enumerate(judges)}
    nan = float("nan")
    return AgreementSummary(
        split,
        len(rows),
        len(complete),
        pairwise_kappa(labels),
        fleiss_kappa(complete) if complete and len(judges) > 1 else nan,
        krippendorff_alpha(rows),
    )


def judge_reliability(
    rows: ExperimentRows, field: str = "unsafe", coherence_judge: str | None = None
) -> Reliability:
    if field not in ("unsafe", "harmful", "refusal"):
        raise ValueError(f"field must be unsafe, harmful or refusal, not {field!r}")
    # Harmful compliance is only defined on harmful prompts.
    kinds = ("harmful",) if field == "unsafe" else ("harmful", "benign")
    safety = {g.key for g in rows.generations if g.kind in kinds}
    fields = judge_fields(rows)
    labels: dict[str, dict[str, object]] = defaultdict(dict)
    errors: dict[str, set[str]] = defaultdict(set)
    coherence: dict[str, bool] = {}
    for j in rows.judgments:
        if j.generation_key not in safety:
            continue
        name = judge_label(j.judge, j.judge_args)
        if name == coherence_judge and j.coherent is not None:
            coherence[j.generation_key] = j.coherent
        value = unsafe_value(j, fields[name]) if field == "unsafe" else getattr(j, field)
        if j.parse_error:
            errors[name].add(j.generation_key)
        elif value is not None:
            labels[j.generation_key][name] = bool(value) if field == "unsafe" else value
    judges = sorted({name for by in labels.values() for name in by})
    if coherence_judge is not None and not coherence:
        raise ValueError(f"coherence judge {coherence_judge!r} labelled no safety response")
    splits = {ALL: sorted(labels)}
    if coherence_judge is not None:
        splits[COHERENT] = [k for k in sorted(labels) if coherence.get(k) is True]
        splits[INCOHERENT] = [k for k in sorted(labels) if coherence.get(k) is False]
    summaries = [_summary(s, judges, [labels[k] for k in keys]) for s, keys in splits.items()]
    if coherence_judge is None:
        groups = {ALL: set(labels).union(*errors.values())}
    else:
        groups = {s: {k for k, ok in coherence.items() if ok == (s == COHERENT)}
                  for s in (COHERENT, INCOHERENT)}  # fmt: skip
    distributions = []
    for s, keys in groups.items():
        for name in judges:
            counts = Counter(str(labels[k][name]) for k in keys if name in labels.get(k, {}))
            distributions.append(
                LabelDistribution(name, s, dict(sorted(counts.items())), len(errors[name] & keys))
            )
    return Reliability(field, judges, summaries, distributions)
