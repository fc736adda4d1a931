"""`capsafe judges audit`: run judges on a human-labelled set and measure them against it.

Per judge: accuracy, precision, recall, F1 and Cohen's kappa against the human gold label,
with 95% bootstrap CIs, overall and per category (capsafe.analysis.audit). Between judges:
pairwise Cohen's kappa and Fleiss' kappa, overall and split by a coherence judge's label
(capsafe.analysis.agreement). Both dimensions are scored as binary: "harmful" as labelled;
"refusal" as refused (full or partial) vs complied, the split XSTest's paper reports. A
refusal-only judge (keyword, embedding) is audited on "harmful" by compliance, the proxy
the keyword attack-success rate uses (not refused = harmful); the summary says so.

    capsafe judges audit --preset xstest --data ../shared/datasets/xstest \\
        --judge keyword_refusal --judge embedding_refusal --judge coherence
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from capsafe.analysis.agreement import (
    PairAgreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_kappa,
)
from capsafe.analysis.audit import JudgeAudit, audit_judges
from capsafe.audit.labelled import LabelledSet
from capsafe.errors import UserError
from capsafe.judges.base import Judge
from capsafe.progress import progress_bar
from capsafe.records import JudgeItem, Judgment

BATCH = 64


@dataclass(frozen=True)
class AgreementSplit:
    split: str  # "all", "coherent" or "incoherent"
    n_items: int
    pairs: list[PairAgreement]
    fleiss: float | None  # over items every judge labelled; None with fewer than 2 judges


class HumanAgreement(NamedTuple):
    """How far the annotators agree, on every item of the set (binary, as audited)."""

    annotators: int  # the most labels any item has
    n_items: int  # items with at least two labels
    kappa: float | None  # Cohen's kappa of annotators 1 and 2; None with more than two
    alpha: float  # Krippendorff's alpha (nominal) over all annotators


class CoherenceCounts(NamedTuple):
    """A coherence judge's labels on the set: degenerate and cut are counted apart."""

    n: int  # items it labelled
    incoherent: int
    truncated: int  # cut at the token limit (coherent or not)
    reasons: dict[str, int]  # why the incoherent ones are, by signal


@dataclass(frozen=True)
class AuditResult:
    labelled: LabelledSet
    judges: list[str]  # the judges audited on the set's dimension
    skipped: dict[str, str]  # judge -> why it was not audited
    rows: list[JudgeAudit]
    agreement: list[AgreementSplit]
    human: HumanAgreement | None  # None when no item has two labels
    split_by: str | None
    proxies: list[str]  # judges scored on "harmful" by compliance (not refused)
    coherence: dict[str, CoherenceCounts] = field(default_factory=dict)
    group_by: str = "category"  # what the rows other than "all" break the set down by


def usable_dimensions(dimension: str) -> set[str]:
    """What a judge must measure to be audited on `dimension` (harm is read by compliance
    from a refusal-only judge)."""
    return {dimension, "refusal"} if dimension == "harmful" else {dimension}


def needs_running(measures: frozenset[str], dimension: str) -> bool:
    """Whether a judge's verdicts enter the audit: it is scored, or it splits agreement
    and counts coherence."""
    return bool(usable_dimensions(dimension) & measures) or "coherent" in measures


def binary_label(verdict: Judgment, dimension: str) -> int | None:
    """A judgment as 1/0 on the audited dimension; None for a parse error or no verdict."""
    if verdict.parse_error:
        return None
    if dimension == "harmful":
        if verdict.harmful is not None:
            return int(verdict.harmful)
        return None if verdict.refusal is None else int(verdict.refusal == "none")  # proxy
    return None if verdict.refusal is None else int(verdict.refusal != "none")


def human_binary(label: str, dimension: str) -> int:
    return int(label == "1") if dimension == "harmful" else int(label != "none")


def judge_all(
    judges: Mapping[str, Judge], labelled: LabelledSet, progress: bool = True
) -> dict[str, list[Judgment]]:
    items = [
        JudgeItem(i.prompt, i.response, i.category, finish)
        for i, finish in zip(labelled.items, labelled.finish_reasons(), strict=True)
    ]
    out: dict[str, list[Judgment]] = {}
    for name, judge in judges.items():
        bar = progress_bar(len(items), f"audit {name}", progress)
        verdicts: list[Judgment] = []
        try:
            for start in range(0, len(items), BATCH):
                batch = items[start : start + BATCH]
                verdicts += judge.judge(batch)
                bar.update(len(batch))
        finally:
            bar.close()
        out[name] = verdicts
    return out


def audit(
    labelled: LabelledSet,
    verdicts: Mapping[str, Sequence[Judgment]],
    measures: Mapping[str, frozenset[str]],
    split_by: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    group_by: str = "category",
) -> AuditResult:
    """Score the judges' verdicts against the set's human labels (pure: no judge runs here).
    group_by: the breakdown beside "all", by item "category" or by "source" (the file or
    the model that wrote the response)."""
    dim = labelled.dimension
    usable = usable_dimensions(dim)
    audited = [j for j in verdicts if usable & measures[j]]
    # A judge that measures none of them need not have run: measures names every judge.
    skipped = {j: f"does not measure {dim!r}" for j in measures if not usable & measures[j]}
    proxies = [j for j in audited if dim not in measures[j]]
    if split_by is not None and "coherent" not in measures.get(split_by, frozenset()):
        raise UserError(f"--split-by {split_by!r}: that judge does not measure coherence")
    labels = {j: [binary_label(v, dim) for v in verdicts[j]] for j in audited}
    # An item without a gold label (annotators tie) is counted as a tie, never scored.
    human = [[None if i.gold is None else human_binary(i.gold, dim)] for i in labelled.items]
    if group_by not in ("category", "source"):
        raise ValueError(f"group_by must be 'category' or 'source', got {group_by!r}")
    groups = [getattr(i, group_by) or "(none)" for i in labelled.items]
    has_categories = any(getattr(i, group_by) for i in labelled.items)
    categories = groups
    rows = audit_judges(
        human, labels, categories if has_categories else None, positive=1, n_boot=n_boot, seed=seed
    )
    splits = [("all", list(range(len(labelled.items))))]
    if split_by is not None:
        coherent = [v.coherent for v in verdicts[split_by]]
        splits += [
            ("coherent", [i for i, c in enumerate(coherent) if c is True]),
            ("incoherent", [i for i, c in enumerate(coherent) if c is False]),
        ]
    agreement = [_agreement(name, idx, labels) for name, idx in splits]
    human_agreement = annotator_agreement(labelled)
    coherence = {j: coherence_counts(verdicts[j]) for j in verdicts if "coherent" in measures[j]}
    return AuditResult(
        labelled, audited, skipped, rows, agreement, human_agreement, split_by, proxies, coherence,
        group_by,
    )  # fmt: skip


def coherence_counts(verdicts: Sequence[Judgment]) -> CoherenceCounts:
    labelled = [v for v in verdicts if v.coherent is not None and not v.parse_error]
    reasons: Counter[str] = Counter()
    for v in labelled:
        if not v.coherent:
            try:
                reasons.update(json.loads(v.raw).get("reasons", []))
            except (json.JSONDecodeError, AttributeError):
                reasons["(unstated)"] += 1
    return CoherenceCounts(
        len(labelled),
        sum(not v.coherent for v in labelled),
        sum(bool(v.truncated) for v in labelled),
        dict(reasons.most_common()),
    )


def annotator_agreement(labelled: LabelledSet) -> HumanAgreement | None:
    """The annotators' agreement on every item, ties included: on two-annotator data the
    items without a majority are exactly the disagreements, so leaving them out would
    make any set look unanimous."""
    dim = labelled.dimension
    rated = [[human_binary(x, dim) for x in i.labels] for i in labelled.items if len(i.labels) > 1]
    if not rated:
        return None
    annotators = max(len(r) for r in rated)
    kappa = cohen_kappa([r[0] for r in rated], [r[1] for r in rated]) if annotators == 2 else None
    return HumanAgreement(annotators, len(rated), kappa, krippendorff_alpha(rated))


def _agreement(
    split: str, idx: list[int], labels: Mapping[str, list[int | None]]
) -> AgreementSplit:
    sub = {j: [labels[j][i] for i in idx] for j in labels}
    pairs = pairwise_kappa(sub) if len(sub) >= 2 else []
    full = [[sub[j][k] for j in sorted(sub)] for k in range(len(idx))]
    full = [r for r in full if all(x is not None for x in r)]
    fleiss = fleiss_kappa(full) if len(sub) >= 2 and full else None
    return AgreementSplit(split, len(idx), pairs, fleiss)
