"""capsafe's one command-line entry point.

capsafe run examples/organism.yaml                 # the whole experiment, resumable
capsafe run examples/organism.yaml --dry-run       # what it would do, what is stored
capsafe run exp.yaml decoding.max_new_tokens=32    # key=value overrides
capsafe report runs/organism-quickstart            # rewrite the HTML report from the store
capsafe organism build .capsafe/organism --seed 0  # build the model organism
capsafe list judges                                # registered judges, backends, sets, tasks
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from capsafe import __version__


def _cmd_run(args: argparse.Namespace) -> int:
    from capsafe.config import load_config
    from capsafe.pipeline import describe_plan, run_experiment

    cfg = load_config(Path(args.config), args.overrides)
    if args.dry_run:
        print(json.dumps(describe_plan(cfg, progress=not args.quiet), indent=2))
        return 0
    outcome = run_experiment(cfg, progress=not args.quiet, report=not args.no_report)
    print(
        f"capsafe: {cfg.name}: trained {outcome.epochs_trained} epoch(s), "
        f"generated {outcome.generated}, judged {outcome.judged}, scored {outcome.scored} "
        f"in {outcome.seconds:.1f} s"
    )
    if outcome.report:
        print(f"capsafe: report: {outcome.report}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from capsafe.pipeline import REPORT_FILE, STORE_FILE
    from capsafe.report import write_report
    from capsafe.store import Store

    folder = Path(args.dir)
    db = folder / STORE_FILE
    if not db.is_file():
        raise FileNotFoundError(f"{folder}: no {STORE_FILE} here (is it an experiment folder?)")
    with Store(db) as store:
        path = write_report(store, Path(args.output) if args.output else folder / REPORT_FILE)
    print(f"capsafe: report: {path}")
    return 0


def _cmd_organism_build(args: argparse.Namespace) -> int:
    from capsafe.organism import build_organism

    path = build_organism(Path(args.dir), seed=args.seed, steps=args.steps, progress=not args.quiet)
    print(f"capsafe: organism built in {path}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from capsafe.backends import BACKENDS
    from capsafe.data import PROMPT_SETS, TASKS
    from capsafe.judges import JUDGES

    registry = {"judges": JUDGES, "backends": BACKENDS, "prompt-sets": PROMPT_SETS, "tasks": TASKS}
    for name in registry[args.what].names():
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capsafe",
        description="Measure what fine-tuning did to an LLM's safety, grounded in capability.",
    )
    parser.add_argument("--version", action="version", version=f"capsafe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run an experiment from its YAML file (fine-tune, generate, judge, score, report)",
        description="Run every step of the experiment that is not stored yet; rerunning is cheap.",
    )
    run.add_argument("config", help="experiment YAML file")
    run.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="override config fields by dotted path, e.g. finetune.seeds=[0,1] safety.0.limit=20",
    )
    run.add_argument(
        "--dry-run", action="store_true", help="print the plan and what is stored; run nothing"
    )
    run.add_argument("--no-report", action="store_true", help="skip writing the HTML report")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser(
        "report", help="write the HTML report of an experiment folder from its store"
    )
    report.add_argument("dir", help="experiment folder (holds capsafe.db)")
    report.add_argument("-o", "--output", help="report file (default: DIR/report.html)")
    report.set_defaults(func=_cmd_report)

    organism = sub.add_parser("organism", help="the built-in model organism")
    org_sub = organism.add_subparsers(dest="organism_command", required=True)
    build = org_sub.add_parser(
        "build",
        help="build the organism (a tiny safety-aligned chat model) into DIR",
        description="Deterministically write the synthetic world and train the organism on it.",
    )
    build.add_argument("dir", help="output folder (must not exist)")
    build.add_argument("--seed", type=int, default=0, help="world and training seed (default 0)")
    build.add_argument(
        "--steps", type=int, default=None, help="training steps (default: the full build)"
    )
    build.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    build.set_defaults(func=_cmd_organism_build)

    lister = sub.add_parser("list", help="list registered judges, backends, prompt sets or tasks")
    lister.add_argument("what", choices=["judges", "backends", "prompt-sets", "tasks"])
    lister.set_defaults(func=_cmd_list)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from capsafe.config import ConfigError
    from capsafe.data.base import EmptySetError
    from capsafe.registry import UnknownNameError

    return (
        ConfigError,
        UnknownNameError,
        EmptySetError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except _user_errors() as err:
        # A user's mistake: say what and where, without a traceback (CAPSAFE_DEBUG=1
        # shows it). Everything already computed is in the store.
        if os.environ.get("CAPSAFE_DEBUG"):
            raise
        print(f"capsafe: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("capsafe: interrupted; finished work is stored, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
