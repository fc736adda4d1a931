"""Judge audit against human labels: accuracy, precision, recall, F1 and kappa with CIs.

Input is plain lists (one entry per item): the human labels of each item (one or more
annotators; the majority is the truth, ties are left out and counted), each judge's binary
label (None for a parse error, left out and counted), and optionally each item's category
for a per-category breakdown. CIs are percentile bootstraps over items.

Example:
    >>> rows = audit_judges([[1, 1, 0], [0, 0, 0]], {"kw": [1, 0]}, categories=None)
    >>> rows[0].accuracy.value
    1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from capsafe.analysis.agreement import Label, majority
from capsafe.analysis.stats import Estimate

ALL = "all"


class JudgeAudit(NamedTuple):
    judge: str
    category: str  # "all", or one item category
    n: int  # items scored: human majority exists and the judge gave a label
    parse_errors: int  # items the judge left unlabelled
    ties: int  # items whose human labels tie
    accuracy: Estimate
    precision: Estimate
    recall: Estimate
    f1: Estimate
    kappa: Estimate


def _metrics(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    """Rows of (accuracy, precision, recall, F1, kappa) from confusion counts (NaN if undefined).

    Kappa is undefined, as in capsafe.analysis.agreement.cohen_kappa, when the judge or the
    humans give one label only: the formula's 0 there would read as a certain "no better
    than chance", and a bootstrap of it as a zero-width interval."""
    n = tp + fp + fn + tn
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = (tp + tn) / n
        prec = tp / (tp + fp)
        rec = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
        pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        one_label = (tp + fp == 0) | (fn + tn == 0) | (tp + fn == 0) | (fp + tn == 0)
        kappa = np.where(one_label, np.nan, (acc - pe) / (1 - pe))
    return np.stack([acc, prec, rec, f1, kappa], axis=-1)


def _score(truth: np.ndarray, pred: np.ndarray, n_boot: int, seed: int) -> list[Estimate]:
    n = len(truth)

    def counts(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
        return (
            np.sum(t & p, axis=-1),
            np.sum(~t & p, axis=-1),
            np.sum(t & ~p, axis=-1),
            np.sum(~t & ~p, axis=-1),
        )

    point = _metrics(*(c.astype(float) for c in counts(truth, pred)))
    if n == 0:
        return [Estimate(float("nan"), float("nan"), float("nan"), 0)] * 5
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boots = _metrics(*(c.astype(float) for c in counts(truth[idx], pred[idx])))
    out = []
    for m in range(5):
        b = boots[:, m][~np.isnan(boots[:, m])]
        lo, hi = np.quantile(b, [0.025, 0.975]) if len(b) else (np.nan, np.nan)
        out.append(Estimate(float(point[m]), float(lo), float(hi), n))
    return out


def audit_judges(
    human: Sequence[Sequence[Label | None]],
    judges: Mapping[str, Sequence[Label | None]],
    categories: Sequence[str] | None = None,
    positive: Label = 1,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[JudgeAudit]:
    """Each judge against the human majority, overall and per category.

    `positive` is the label counted as a positive (e.g. True for "harmful"); any other label
    is a negative.
    """
    truth = [majority(h) for h in human]
    cats = list(categories) if categories is not None else [ALL] * len(human)
    if len(cats) != len(human):
        raise ValueError(f"{len(cats)} categories for {len(human)} items")
    groups = [ALL] + sorted({c for c in cats if c != ALL}) if categories is not None else [ALL]
    out = []
    for name, labels in sorted(judges.items()):
        if len(labels) != len(human):
            raise ValueError(f"judge {name}: {len(labels)} labels for {len(human)} items")
        for group in groups:
            members = [i for i, c in enumerate(cats) if group == ALL or c == group]
            ties = sum(truth[i] is None for i in members)
            errors = sum(labels[i] is None for i in members)
            kept = [i for i in members if truth[i] is not None and labels[i] is not None]
            t = np.array([truth[i] == positive for i in kept], dtype=bool)
            p = np.array([labels[i] == positive for i in kept], dtype=bool)
            acc, prec, rec, f1, kappa = _score(t, p, n_boot, seed)
            out.append(JudgeAudit(name, group, len(kept), errors, ties, acc, prec, rec, f1, kappa))
    return out
