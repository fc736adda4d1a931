"""The Ray executor's overhead: one config run in-process and on a local Ray cluster.

    python benchmarks/ray_overhead.py                       # the quick start's grid, 2 CPUs
    python benchmarks/ray_overhead.py --config EXP.yaml --num-cpus 2 --out /tmp/ray-bench

Each run is a fresh `capsafe run` process on an empty output folder (the organism is built
beforehand, so neither pays for it). Prints both wall times and their ratio (target: Ray at
most 1.2x in-process on 2 cores), Ray's overhead per unit, how many units ran at once, and
whether the two stores are equal; draws the Ray run's timeline (one lane per unit) to
OUT/ray-timeline.png. Not a test: run by hand, quote the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(config: Path, out: Path, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "capsafe.cli", "run", str(config), f"output_dir={out}", "-q",
           "--no-report", *extra]  # fmt: skip
    start = time.monotonic()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.monotonic() - start


def dump(out: Path) -> dict:
    from capsafe.pipeline import STORE_FILE
    from capsafe.store import Store

    with Store(out / STORE_FILE) as store:
        return store.dump(out)


def concurrency(spans: list[tuple[float, float]]) -> tuple[int, float]:
    """The most units running at once, and the time-weighted mean of how many ran."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    now = peak = 0
    area, last = 0.0, edges[0][0]
    for t, d in edges:
        area += now * (t - last)
        now += d
        peak = max(peak, now)
        last = t
    return peak, area / (edges[-1][0] - edges[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "examples" / "organism.yaml")
    parser.add_argument("--num-cpus", type=int, default=2, help="the local Ray cluster's CPUs")
    parser.add_argument("--out", type=Path, default=Path("/tmp/capsafe-ray-bench"))
    args = parser.parse_args()
    from capsafe.config import load_config
    from capsafe.organism import ensure_organism

    cfg = load_config(args.config)
    ensure_organism(cfg.organism.dir, seed=cfg.organism.seed, progress=False)
    here, ray = args.out / "inprocess", args.out / "ray"
    for folder in (here, ray):
        if folder.exists():
            sys.exit(f"{folder} exists: give an empty --out")
    t_here = run(args.config, here, [])
    t_ray = run(args.config, ray, ["execution.engine=ray", f"execution.num_cpus={args.num_cpus}"])
    equal = dump(here) == dump(ray)

    lines = (ray / "execution" / "timeline.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in lines]
    starts, ends, stored = {}, {}, {}
    for e in events:
        table = {"start": starts, "end": ends, "stored": stored}.get(e["event"])
        if table is not None:
            table[e["unit"]] = e["t"]
    units = [u for u in ends if u in starts]
    spans = [(starts[u], ends[u]) for u in units]
    worker_s = sum(e - s for s, e in spans)
    first, last = min(s for s, _ in spans), max(stored.values())
    peak, mean = concurrency(spans)
    latency = [stored[u] - ends[u] for u in units if u in stored]
    steps: dict[str, int] = {}
    for u in units:
        steps[u.split(" ")[0]] = steps.get(u.split(" ")[0], 0) + 1

    print(f"config: {args.config} ({args.num_cpus} CPUs for Ray)")
    print(f"in-process: {t_here:.1f} s   ray: {t_ray:.1f} s   ratio {t_ray / t_here:.2f}x")
    print(f"stores equal: {equal}")
    print(f"units: {len(units)} ({', '.join(f'{k} {v}' for k, v in steps.items())})")
    print(f"Ray run: {t_ray - (last - first):.1f} s before the first unit started and after "
          f"the last was stored (start-up, shut-down); units' worker time {worker_s:.1f} s "
          f"over {last - first:.1f} s")  # fmt: skip
    print(f"overhead per unit: {(t_ray - t_here) / len(units) * 1000:.0f} ms (the wall-time "
          f"difference / units); a result reaches the store {statistics.median(latency) * 1000:.0f}"
          f" ms (median) after its unit ends")  # fmt: skip
    print(f"units at once: at most {peak}, {mean:.2f} on average (time-weighted)")
    _plot(units, starts, ends, first, args.out / "ray-timeline.png")
    print(f"timeline: {args.out / 'ray-timeline.png'}")


def _plot(units, starts, ends, t0, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(units, key=lambda u: starts[u])
    colours = {"finetune": "tab:red", "generate": "tab:blue", "judge": "tab:green",
               "score": "tab:purple"}  # fmt: skip
    fig, ax = plt.subplots(figsize=(10, max(3, len(order) * 0.12)))
    for i, u in enumerate(order):
        kind = u.split(" ")[0]
        ax.barh(i, ends[u] - starts[u], left=starts[u] - t0, height=0.8,
                color=colours.get(kind, "grey"))  # fmt: skip
    ax.set_xlabel("seconds since the first unit started")
    ax.set_ylabel("unit (by start)")
    ax.set_yticks([])
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, list(colours), loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
