"""The organism report's headline numbers as plain text, so a note can quote them and anyone
can reproduce them from a store: capability reached, the safety change at matched
capability with CIs, conclusion stability, judge agreement by coherence, where the variance
comes from, settings over seeds and power. The same analyses the report renders.

    capsafe run examples/organism.yaml && python benchmarks/organism_headline.py
    python benchmarks/organism_headline.py runs/organism-quickstart/capsafe.db
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter, defaultdict

from capsafe.analysis.analyses import run_analyses
from capsafe.analysis.rows import ExperimentRows
from capsafe.store import Store


def _pp(x: float) -> str:
    return f"{x * 100:+.1f}"


def main(db: str = "runs/organism-quickstart/capsafe.db") -> None:
    with Store(db) as store:
        a = run_analyses(ExperimentRows.from_store(store))
    acc = defaultdict(list)
    for r in a.rates:
        if r.metric == "accuracy" and r.benchmark == a.capability:
            acc[r.model.epoch].append(r.value)
    print(
        "accuracy by epoch (mean over runs):",
        ", ".join(f"{e}: {statistics.fmean(v):.3f}" for e, v in sorted(acc.items())),
    )
    anch = a.anchoring
    if anch:
        print(
            f"\ntarget {anch.target}, thresholds {anch.thresholds}; "
            f"{len(anch.anchors)} runs reached it, {len(anch.never_reached)} never did"
        )
        at = {x.model.model_key for x in anch.anchors}
        for c in a.comparisons:
            if c.b.model_key in at:
                d = c.difference
                print(
                    f"  {c.b.describe()} | {c.benchmark} | {c.judge}: {_pp(d.value)} pp "
                    f"[{_pp(d.ci_low)}, {_pp(d.ci_high)}], {c.test.method} p_Holm {c.p_holm:.2g}"
                )
    unsafe = defaultdict(list)
    for r in a.rates:
        if r.metric == a.safety_metric:
            unsafe[(r.benchmark, r.judge, r.model.epoch)].append(r.value)
    print(f"\n{a.safety_metric} by epoch (mean over runs):")
    for key in sorted({k[:2] for k in unsafe}):
        by = [(e, statistics.fmean(v)) for (b, j, e), v in sorted(unsafe.items()) if (b, j) == key]
        print(f"  {key[0]} | {key[1]}: " + ", ".join(f"{e}: {v:.3f}" for e, v in by))
    incoherent = defaultdict(list)
    for r in a.rates:
        if r.metric == "incoherent":
            incoherent[r.model.epoch].append(r.value)
    print(
        "incoherent share by epoch (mean over runs and sets):",
        ", ".join(f"{e}: {statistics.fmean(v):.3f}" for e, v in sorted(incoherent.items())),
    )
    counts = Counter(v.verdict for v in a.verdicts)
    spreads = [v.spread for v in a.verdicts if len(v.cells) > 1]
    print(
        f"\nstability over {len(a.verdicts)} checkpoints: {dict(counts)}; change differs between "
        f"cells by up to {max(spreads, default=0) * 100:.1f} pp "
        f"(median {statistics.median(spreads) * 100 if spreads else 0:.1f})"
    )
    if a.reliability:
        for s in a.reliability.summaries:
            print(
                f"agreement on {a.reliability.field}, {s.split} ({s.n_items} responses): Fleiss "
                f"{s.fleiss:.3f}, Krippendorff {s.krippendorff:.3f}; pairwise "
                + ", ".join(
                    f"{p.judge_a.split('(')[0]}~{p.judge_b.split('(')[0]} {p.kappa:.3f}"
                    for p in s.pairwise
                )
            )
    if a.decomposition:
        dec = a.decomposition
        print(
            f"\nvariance of {dec.metric} at the last epoch ({dec.method}): "
            + ", ".join(f"{c.factor} {c.share:.1%}" for c in dec.components)
        )
    for t in a.setting_tests:
        at_ = "matched" if t.epoch is None else f"epoch {t.epoch}"
        print(
            f"settings {t.setting_b} - {t.setting_a} at {at_} | {t.benchmark} | "
            f"{t.judge.split('(')[0]}: {_pp(t.difference)} pp, permutation p "
            f"{t.permutation.p_value:.3f}, Welch p {t.welch.p_value:.3f}, Holm {t.p_holm:.3f}"
        )
    for p in a.power:
        if p.epoch == max(x.epoch for x in a.power):
            v = p.advice
            print(
                f"power {p.setting} | {v.benchmark} | {v.judge.split('(')[0]}: seeds {v.seeds}, "
                f"prompts paired {v.prompts_paired}, unpaired {v.prompts_unpaired}"
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
