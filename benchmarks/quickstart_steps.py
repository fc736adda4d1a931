"""Where the quick start's time goes: each step's seconds and share, and the harness's share.

Runs an experiment (default examples/organism.yaml) in this process into a fresh output
folder (a cold run; the organism must be built, as any run after the first has it), timing
every step the pipeline runs: the plan-time check, loading the prompt sets, each fine-tuning
run, generation, each judge (with its items/s), scoring and the report. The harness is
the wall time outside those steps (hashing, the store's reads, the plan) plus the time
inside them spent in the store. MiniLM encodes are counted and timed inside the judges.
With --warm it then times `capsafe run` again on the finished folder in a new process (a
warm rerun: nothing to compute). --json writes the figures for docs/performance.md.

    python benchmarks/quickstart_steps.py
    python benchmarks/quickstart_steps.py --warm --json /tmp/steps.json
    PYTHONPATH=/tmp/old python benchmarks/quickstart_steps.py   # the same on other code

The script only wraps functions the pipeline has had since before issue 17, so it times
older code too (for a before/after table).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class Clock:
    """Seconds and items per step; a step inside another is not counted twice."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)
        self.depth = 0

    def wrap(self, name_of: Callable[..., str], fn: Callable[..., Any], count: Any = None) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            outer = self.depth == 0
            self.depth += 1
            start = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            finally:
                self.depth -= 1
            if outer:
                name = name_of(*args, **kwargs)
                self.seconds[name] += time.perf_counter() - start
                if count is not None:
                    self.items[name] += count(out, *args, **kwargs)
            return out

        return timed


def instrument(clock: Clock, side: Clock) -> None:
    """Wrap the pipeline's steps (clock) and the store and MiniLM (side, inside steps)."""
    import capsafe.pipeline as pipeline
    import capsafe.report as report
    from capsafe.store import Store

    def judge_name(spec: Any, judge: Any, *a: Any, **k: Any) -> str:
        return f"judge {judge.name}"

    steps = {
        "check_config": lambda *a, **k: "check config",
        "load_inputs": lambda *a, **k: "load prompt sets",
        "finetune_run": lambda *a, **k: "fine-tune",
        "_generate": lambda *a, **k: "generate",
        "_judge": judge_name,
        "_score": lambda *a, **k: "score",
    }
    counts = {"_generate": lambda out, *a, **k: out, "_score": lambda out, *a, **k: out,
              "_judge": lambda out, spec, judge, gens, *a, **k: out}  # fmt: skip
    for attr, name_of in steps.items():
        setattr(pipeline, attr, clock.wrap(name_of, getattr(pipeline, attr), counts.get(attr)))
    report.write_report = clock.wrap(lambda *a, **k: "report", report.write_report)

    def store(*a: Any, **k: Any) -> str:  # outside the steps, the harness counts it already
        return "store" if clock.depth else "store outside steps"

    names = ("_insert", "_insert_in", "existing_keys", "generations", "generations_by_key")
    for attr in names:
        if hasattr(Store, attr):
            setattr(Store, attr, side.wrap(store, getattr(Store, attr)))
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return
    SentenceTransformer.encode = side.wrap(
        lambda self, texts, *a, **k: "MiniLM encode", SentenceTransformer.encode,
        lambda out, self, texts, *a, **k: len(texts),
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", nargs="?", default=str(REPO / "examples" / "organism.yaml"))
    ap.add_argument("--out", help="the output folder (default: a fresh temporary one)")
    ap.add_argument("--warm", action="store_true", help="then time a warm rerun (new process)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    from capsafe.config import load_config
    from capsafe.pipeline import run_experiment

    out = Path(args.out or tempfile.mkdtemp(prefix="capsafe-steps-"))
    clock, side = Clock(), Clock()
    instrument(clock, side)
    cfg = load_config(Path(args.config), [f"output_dir={out}"])
    start = time.perf_counter()
    outcome = run_experiment(cfg, progress=False)
    wall = time.perf_counter() - start
    store_s = side.seconds.get("store", 0.0)
    harness = wall - sum(clock.seconds.values()) + store_s
    rows = [(name, s, clock.items.get(name)) for name, s in clock.seconds.items()]
    print(f"{'step':28} {'s':>8} {'share':>7} {'items':>7} {'items/s':>8}")
    for name, s, n in rows:
        rate = f"{n / s:8.1f}" if n and s > 0 else " " * 8
        print(f"{name:28} {s:8.1f} {s / wall:7.1%} {n or '':>7} {rate}")
    print(f"{'  of which in the store':28} {store_s:8.1f} {store_s / wall:7.1%}")
    enc = side.seconds.get("MiniLM encode", 0.0)
    print(f"{'  MiniLM encodes (in judges)':28} {enc:8.1f} {enc / wall:7.1%} "
          f"{side.items.get('MiniLM encode', 0):>7}")  # fmt: skip
    print(f"{'harness (outside steps + store)':28} {harness:8.1f} {harness / wall:7.1%}")
    print(f"{'wall':28} {wall:8.1f}   ({outcome.generated} generated, {outcome.judged} judged)")
    figures: dict[str, Any] = {
        "wall_s": wall, "harness_s": harness, "store_s": store_s, "encode_s": enc,
        "encoded_texts": side.items.get("MiniLM encode", 0),
        "steps": {name: {"s": s, "items": n} for name, s, n in rows},
    }  # fmt: skip
    if args.warm:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        # -P: the capsafe on this PYTHONPATH, not one in the working directory.
        cmd = [sys.executable, "-P", "-m", "capsafe.cli", "run", args.config, f"output_dir={out}"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        figures["warm_rerun_s"] = time.perf_counter() - start
        print(f"{'warm rerun (new process)':28} {figures['warm_rerun_s']:8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
