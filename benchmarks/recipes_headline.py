"""The recipes report's headline table as plain text, so a note can quote it and anyone can
reproduce it from a store: per recipe x benchmark x judge, the matched checkpoints, the
change against the baseline at matched capability with its CI and Holm p, the verdict, and
the recipe's price (capability reached, over-refusal, incoherent share). The same analyses
the report renders, with the report settings the run saved.

    capsafe run examples/recipes.yaml && python benchmarks/recipes_headline.py
    python benchmarks/recipes_headline.py runs/organism-recipes/capsafe.db
"""

from __future__ import annotations

import json
import math
import sys

from capsafe.analysis.analyses import run_analyses
from capsafe.analysis.rows import ExperimentRows
from capsafe.config import report_spec
from capsafe.store import Store


def _pct(x: float) -> str:
    return "  -  " if math.isnan(x) else f"{100 * x:5.1f}%"


def main(db: str = "runs/organism-recipes/capsafe.db") -> None:
    with Store(db) as store:
        saved = store.meta("config")
        spec, _ = report_spec(json.loads(saved) if saved else None)
        a = run_analyses(ExperimentRows.from_store(store), spec)
    r = a.recipes
    if r is None:
        print(a.notes.get("recipes", "no recipes to compare"))
        return
    print(f"target: {a.anchoring.target}; reference: {r.reference}\n")
    print("recipe        benchmark                judge            format  matched (seed: epoch vs "
          "ref)  change [95% CI]           Holm p    verdict")  # fmt: skip
    for c in r.cells:
        d = c.comparison.difference
        pairs = ", ".join(f"s{s}: e{m} vs e{ref}" for s, m, ref in c.pairs)
        judge = c.judge.split("(")[0]
        print(f"{c.level:13} {c.benchmark:24} {judge:16} {c.format:7} {pairs:23} "
              f"{100 * d.value:+6.1f} pp [{100 * d.ci_low:+6.1f}, {100 * d.ci_high:+6.1f}]  "
              f"{c.comparison.p_holm:8.1e}  {c.verdict}")  # fmt: skip
    print("\nstability per recipe:")
    for s in r.stability:
        print(f"  {s.level:15} {s.verdict} ({s.n_cells} cells, {100 * s.low:+.1f} to "
              f"{100 * s.high:+.1f} pp)")  # fmt: skip
    print("\nprice at the target (mean over the recipe's anchored runs):")
    print("  recipe          reached  epochs     accuracy  best     over-refusal  incoherent")
    for p in r.prices:
        over = [v for (m, *_), v in p.means.items() if m == "over_refusal"]
        inc = [v for (m, *_), v in p.means.items() if m == "incoherent"]
        print(f"  {p.level:15} {p.n_reached}/{p.n_runs}      "
              f"{','.join(f'e{e}' for e in p.epochs) or '-':10} {_pct(p.accuracy)}    "
              f"{_pct(p.best_accuracy)}   {_pct(sum(over) / len(over) if over else math.nan)}"
              f"        {_pct(sum(inc) / len(inc) if inc else math.nan)}")  # fmt: skip
    for level, missed in sorted(r.missed.items()):
        for m in missed:
            best = _pct(m.best_accuracy)
            print(f"  never reached: {level} {m.setting} seed {m.seed} (best {best})")


if __name__ == "__main__":
    main(*sys.argv[1:])
