"""The kill -9 campaign: a small organism experiment killed at random points across
fine-tuning, generation, judging and report writing, resumed each time, and its final store
compared with an uninterrupted run's (issue 12's done-criterion; run by hand, ~15 min).

    python benchmarks/kill_campaign.py                 # 12 kills, seed 0
    python benchmarks/kill_campaign.py --kills 20 --seed 3

Each kill aims at a phase in turn (fine-tuning, generation, judging, the end: the last
judge, scoring and the report): the attempt is killed a random 0-3 s after that phase's
progress line appears. An attempt that finishes first (the phase was already stored) starts
the folder afresh. Prints each kill (the phase aimed at, the phase the last progress line
shows) and whether the stores are identical, then exits 0 if they are, 1 if not.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from capsafe.pipeline import STORE_FILE
from capsafe.store import Store

REPO = Path(__file__).resolve().parents[1]
PHASES = (("fine-tuning", "fine-tuning"), ("generate", "generation"), ("judge", "judging"),
          ("score", "scoring"), ("report", "report"))  # fmt: skip
# (phase aimed at, the progress text that starts it)
TARGETS = (("fine-tuning", "fine-tuning"), ("generation", "generate:"),
           ("judging", "judge keyword_refusal"), ("the end", "judge coherence"))  # fmt: skip


def config(folder: Path, name: str, organism: Path) -> Path:
    data = {
        "name": name,
        "output_dir": str(folder / name),
        "organism": {"dir": str(organism), "seed": 0},
        "base_models": [{"name": "organism", "path": "builtin:organism"}],
        "task": {"name": "organism_arithmetic", "train_limit": 160, "test_limit": 12},
        "finetune": {"grid": {"learning_rate": [3e-3], "rank": [4], "alpha": [8],
                              "epochs": [2]}, "seeds": [0, 1], "batch_size": 16},
        "safety": [{"name": "organism/harmful", "limit": 12},
                   {"name": "organism/lookalike", "limit": 8}],
        "decoding": {"max_new_tokens": 24},
        "judges": [{"name": "keyword_refusal"}, {"name": "coherence"}],
        "generation": {"batch_size": 8},
    }  # fmt: skip
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def command(cfg: Path) -> list[str]:
    return [sys.executable, "-c", "import sys; from capsafe.cli import main; "
            "sys.exit(main(sys.argv[1:]))", "run", str(cfg)]  # fmt: skip


def dump(out: Path) -> dict:
    with Store(out / STORE_FILE) as store:
        return store.dump(out)


def phase_of(log: str) -> str:
    found = "startup"
    for line in log.replace("\r", "\n").splitlines():
        for marker, phase in PHASES:
            if marker in line:
                found = phase
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--organism", default=str(REPO / ".capsafe" / "organism"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ref_cfg = config(folder, "reference", Path(args.organism))
        start = time.monotonic()
        subprocess.run(command(ref_cfg), check=True, env=env, capture_output=True)
        whole = time.monotonic() - start
        print(f"uninterrupted: {whole:.0f} s")
        killed_cfg = config(folder, "killed", Path(args.organism))
        kills = []
        while len(kills) < args.kills:
            aim, marker = TARGETS[len(kills) % len(TARGETS)]
            log = folder / "attempt.log"
            with log.open("w") as f:
                proc = subprocess.Popen(command(killed_cfg), env=env, stdout=f, stderr=f)
                while proc.poll() is None and marker not in log.read_text(errors="replace"):
                    time.sleep(0.05)
                if proc.poll() is None:
                    time.sleep(rng.uniform(0.0, 3.0))
                if proc.poll() is not None:
                    print(f"  attempt finished before {aim}; starting afresh")
                    shutil.rmtree(folder / "killed")
                    continue
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            phase = phase_of(log.read_text(errors="replace"))
            kills.append((aim, phase))
            print(f"  kill {len(kills):2}: aimed at {aim}, the last progress line says {phase}")
        done = subprocess.run(command(killed_cfg), env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:])
            return 1
        same = dump(folder / "reference") == dump(folder / "killed")
        phases = sorted({p for _, p in kills})
        print(f"{len(kills)} kills across {', '.join(phases)}; stores identical: {same}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
