"""Requests per second through the `openai` backend against a local `transformers serve`
of the organism, at several concurrencies, beside the in-process transformers backend on
the same prompts (run by hand; ~3 min on 2 CPU cores).

    python benchmarks/served_throughput.py                       # concurrency 1, 8, 32
    python benchmarks/served_throughput.py --concurrency 1 4 --requests 48
    python benchmarks/served_throughput.py --continuous-batching  # the server's CB engine

Prints one row per setting: requests, wall seconds, requests/s, completion tokens/s, and
whether the greedy texts equal the in-process backend's.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from capsafe.backends import BACKENDS
from capsafe.organism import ensure_organism, load_world
from capsafe.records import GenerationRequest, Message

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: Path, cb: bool) -> tuple[subprocess.Popen, str]:
    port = _port()
    serve = Path(sys.executable).with_name("transformers")
    cmd = ["timeout", "1800", str(serve), "serve", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--device", "cpu", "--log-level", "warning"]  # fmt: skip
    if cb:
        cmd.append("--continuous-batching")
    log = open(Path(tempfile.gettempdir()) / f"capsafe-serve-{port}.log", "wb")  # noqa: SIM115
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"transformers serve did not start; see {log.name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--organism", type=Path, default=REPO / ".capsafe" / "organism")
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--continuous-batching", action="store_true")
    args = ap.parse_args()

    organism = ensure_organism(args.organism, seed=0, progress=False)
    world = load_world(organism)
    prompts = [it.prompt for name in ("harmful_test", "lookalike_test") for it in world[name]]
    requests = [GenerationRequest((Message("user", p),), max_new_tokens=args.max_new_tokens)
                for p in prompts[: args.requests]]  # fmt: skip

    local = BACKENDS.create("transformers", model=str(organism), device="cpu", batch_size=32)
    local.generate(requests[:4])  # warm
    t = time.perf_counter()
    want = local.generate(requests)
    local_s = time.perf_counter() - t
    local.close()
    tokens = sum(o.n_completion_tokens for o in want)
    print(f"{'setting':<34} {'requests':>8} {'wall s':>8} {'req/s':>7} {'tok/s':>7} equal")
    print(f"{'in-process transformers, batch 32':<34} {len(requests):>8} {local_s:>8.1f} "
          f"{len(requests) / local_s:>7.2f} {tokens / local_s:>7.1f} -")  # fmt: skip

    proc, url = start_server(organism, args.continuous_batching)
    try:
        for c in args.concurrency:
            remote = BACKENDS.create("openai", model=str(organism), base_url=url, concurrency=c)
            remote.generate(requests[:2])  # the server loads the model on its first request
            t = time.perf_counter()
            got = remote.generate(requests)
            wall = time.perf_counter() - t
            equal = [g.text for g in got] == [w.text for w in want]
            done = sum(o.n_completion_tokens for o in got)
            label = f"served, concurrency {c}" + (" (CB)" if args.continuous_batching else "")
            print(f"{label:<34} {len(requests):>8} {wall:>8.1f} {len(requests) / wall:>7.2f} "
                  f"{done / wall:>7.1f} {equal}")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
