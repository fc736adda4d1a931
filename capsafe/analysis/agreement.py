"""Agreement between raters (judges, humans) on plain label lists.

- cohen_kappa(a, b): two raters, any hashable labels; None (no label, parse error) pairs drop;
  undefined (NaN) when a rater gives one label only.
- fleiss_kappa(ratings): items x raters, the same number of labels per item.
- krippendorff_alpha(ratings): nominal alpha, items x raters, None for missing.
- pairwise_kappa(labels_by_judge): every pair of judges, labels aligned by item.
The judge audit against human labels lives in capsafe.analysis.audit.

Example:
    >>> cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple

Label = Hashable


def cohen_kappa(a: Sequence[Label | None], b: Sequence[Label | None]) -> float:
    """Cohen's kappa of two raters over the items both labelled.

    NaN when undefined: no items, or a rater that gives one label only. Such a rater's
    kappa is 0 by the formula, but it says nothing about agreement beyond chance, so it
    is reported as undefined rather than as a certain 0."""
    if len(a) != len(b):
        raise ValueError(f"label lists differ in length: {len(a)} vs {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    n = len(pairs)
    if n == 0:
        return math.nan
    observed = sum(x == y for x, y in pairs) / n
    ca, cb = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    if len(ca) < 2 or len(cb) < 2:
        return math.nan
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return (observed - expected) / (1 - expected)


def fleiss_kappa(ratings: Sequence[Sequence[Label]]) -> float:
    """Fleiss' kappa; each item (row) must carry the same number (>= 2) of labels."""
    if not ratings:
        return math.nan
    r = len(ratings[0])
    for i, row in enumerate(ratings):
        if len(row) != r or any(x is None for x in row):
            raise ValueError(
                f"item {i}: Fleiss' kappa needs {r} labels per item with none missing "
                f"(got {list(row)}); use krippendorff_alpha for missing labels"
            )
    if r < 2:
        raise ValueError("Fleiss' kappa needs at least two raters per item")
    counts = [Counter(row) for row in ratings]
    n_items = len(ratings)
    p_bar = sum((sum(v * v for v in c.values()) - r) / (r * (r - 1)) for c in counts) / n_items
    totals: Counter = Counter()
    for c in counts:
        totals.update(c)
    p_e = sum((v / (n_items * r)) ** 2 for v in totals.values())
    if p_e == 1:
        return math.nan
    return (p_bar - p_e) / (1 - p_e)


def krippendorff_alpha(ratings: Sequence[Sequence[Label | None]]) -> float:
    """Krippendorff's alpha for nominal labels; None marks a missing label.

    Built from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
    Alpha-Reliability"): alpha = 1 - (n - 1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k.
    Items with fewer than two labels are not pairable and are left out.
    """
    coincidences: Counter = Counter()
    for row in ratings:
        values = [x for x in row if x is not None]
        m = len(values)
        if m < 2:
            continue
        for i, j in itertools.permutations(range(m), 2):
            coincidences[(values[i], values[j])] += 1 / (m - 1)
    n_c: Counter = Counter()
    for (c, _), w in coincidences.items():
        n_c[c] += w
    n = sum(n_c.values())
    observed = sum(w for (c, k), w in coincidences.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    if n == 0 or expected == 0:
        return math.nan
    return 1 - (n - 1) * observed / expected


class PairAgreement(NamedTuple):
    judge_a: str
    judge_b: str
    kappa: float
    agreement: float  # share of items both labelled on which they agree
    n: int  # items both labelled


def pairwise_kappa(labels_by_judge: Mapping[str, Sequence[Label | None]]) -> list[PairAgreement]:
    """Cohen's kappa and raw agreement for every pair of judges (labels aligned by item)."""
    out = []
    for ja, jb in itertools.combinations(sorted(labels_by_judge), 2):
        a, b = labels_by_judge[ja], labels_by_judge[jb]
        if len(a) != len(b):
            raise ValueError(f"judges {ja} and {jb} label {len(a)} and {len(b)} items")
        both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        agree = sum(x == y for x, y in both) / len(both) if both else math.nan
        out.append(PairAgreement(ja, jb, cohen_kappa(a, b), agree, len(both)))
    return out


def majority(labels: Sequence[Label | None]) -> Label | None:
    """The most common label, or None when labels tie or none are given."""
    counts = Counter(x for x in labels if x is not None).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]
