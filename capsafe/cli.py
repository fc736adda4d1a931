"""capsafe's one command-line entry point.

capsafe run examples/organism.yaml                 # the whole experiment, resumable
capsafe run examples/organism.yaml --dry-run       # what it would do, what is stored
capsafe run exp.yaml decoding.max_new_tokens=32    # key=value overrides
capsafe run exp.yaml --executor ray                # the same plan on a Ray cluster
capsafe evaluate --base ID_OR_PATH --adapter PATH  # a ready fine-tuned model vs its base
capsafe report runs/organism-quickstart            # rewrite the HTML report from the store
capsafe view runs/organism-quickstart              # every stored response, in a local web page
capsafe organism build .capsafe/organism --seed 0  # build the model organism
capsafe list recipes                               # registered recipes (judges, backends, ...)
capsafe judges audit --preset xstest --data DIR --judge keyword_refusal   # judges vs humans
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from capsafe import __version__
from capsafe.errors import UnitsFailed, UserError

PARQUET_DIR = "tables"  # beside report.html, written by `capsafe report DIR --parquet`


def _cmd_run(args: argparse.Namespace) -> int:
    from capsafe.config import load_config
    from capsafe.pipeline import check_config, describe_plan, run_experiment

    overrides = list(args.overrides or [])
    if args.executor:  # as if given as execution.engine=NAME (after the others: it wins)
        overrides.append(f"execution.engine={args.executor}")
    cfg = load_config(Path(args.config), overrides)
    if args.dry_run:
        check_config(cfg)
        plan = describe_plan(cfg, progress=not args.quiet)
        print(json.dumps(plan, indent=2) if args.json else plan_text(plan))
        return 0
    outcome = run_experiment(cfg, progress=not args.quiet, report=not args.no_report)
    print(
        f"capsafe: {cfg.name}: trained {outcome.epochs_trained} epoch(s), "
        f"generated {outcome.generated}, judged {outcome.judged}, scored {outcome.scored} "
        f"in {outcome.seconds:.1f} s"
    )
    if outcome.estimate and not args.quiet:
        from capsafe.cost import measured_table

        took = ("each step's time" if cfg.execution.engine == "inprocess" else
                "each step's worker time (its units' seconds, summed)")  # fmt: skip
        print(f"capsafe: {took} beside the cost estimate for the work it did:")
        print(measured_table(outcome.estimate, *outcome.work(), outcome.step_seconds))
    if outcome.report:
        print(f"capsafe: report: {outcome.report}")
    return 0


def plan_text(plan: dict[str, Any]) -> str:
    """The dry run for a reader: the plan's size, what is stored, and the cost table."""
    from capsafe.cost import StepCost, cost_table

    p, stored = plan["plan"], plan["stored"]
    lines = [
        f"plan: {p['runs']} fine-tuning runs, {p['checkpoints']} checkpoints, {p['models']} "
        f"models to generate on, {p['prompts_per_model']:,} responses per model",
        f"      {p['generations']:,} responses, {p['judgments']:,} judgments",
        "stored: " + (", ".join(f"{n:,} {t}" for t, n in stored.items()) or "nothing yet"),
    ]
    if "endpoint" in plan:
        e = plan["endpoint"]
        lines.append(f"endpoint: {e['requests']:,} requests to send, {e['prompt_characters']:,} "
                     f"prompt characters, at most {e['max_completion_tokens']:,} completion "
                     "tokens" + (f", {e['prompt_tokens']:,} prompt tokens"
                                 if e["prompt_tokens"] is not None else ""))  # fmt: skip
    if plan.get("not_here"):
        lines.append("not on this machine (the counts below plan around it):")
        lines += [f"  - {line}" for line in plan["not_here"]]
    lines.append("cost (the whole plan; throughput model: config `estimate`, docs/cost.md):")
    lines.append(cost_table([StepCost(**c) for c in plan["cost"]]))
    return "\n".join(lines)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from capsafe.config import load_config, parse_config, resolve_paths
    from capsafe.pipeline import run_experiment

    if args.config:
        if args.base or args.adapter:
            raise UserError("give either a config file or --base/--adapter, not both")
        cfg = load_config(Path(args.config), args.overrides)
        if cfg.finetune is not None:
            raise UserError(
                f"{args.config}: evaluate trains nothing; set `finetune: null` and list "
                "`adapters:` (or use `capsafe run` to fine-tune)"
            )
    else:
        if not args.base:
            raise UserError("evaluate needs --base (or a config file)")
        cfg = resolve_paths(parse_config(evaluate_config(args), "evaluate"), Path.cwd())
    outcome = run_experiment(cfg, progress=not args.quiet, report=not args.no_report)
    print(
        f"capsafe: {cfg.name}: generated {outcome.generated}, judged {outcome.judged}, "
        f"scored {outcome.scored} in {outcome.seconds:.1f} s"
    )
    if outcome.report:
        print(f"capsafe: report: {outcome.report}")
    return 0


def _split_spec(text: str, what: str) -> dict[str, object]:
    """NAME or NAME=PATH -> a prompt set / task spec mapping."""
    name, _, path = text.partition("=")
    if not name:
        raise UserError(f"--{what} {text!r}: expected NAME or NAME=PATH")
    return {"name": name, **({"path": path} if path else {})}


def evaluate_config(args: argparse.Namespace) -> dict[str, object]:
    """The experiment mapping `capsafe evaluate` flags stand for (no fine-tuning)."""
    adapters = []
    for i, ref in enumerate(args.adapter or []):
        name, sep, path = ref.partition("=")
        adapters.append(
            {"name": name, "path": path} if sep else {"name": f"adapter{i + 1}", "path": ref}
        )
    safety = [
        {**_split_spec(b, "benchmark"), **({"limit": args.limit} if args.limit else {})}
        for b in (args.benchmark or ["organism/harmful", "organism/lookalike"])
    ]
    revision = {"revision": args.revision} if args.revision else {}
    served = {"base_url": args.base_url, "api_key_env": args.api_key_env,
              "concurrency": args.concurrency}  # fmt: skip
    generation: dict[str, object] = {
        "backend": args.backend,
        "batch_size": args.batch_size,
        "device": args.device,
        "args": {k: v for k, v in served.items() if v is not None},
    }
    if args.backend == "openai":  # every served name is identified by the one revision
        adapters = [{**a, **revision} for a in adapters]
    data: dict[str, object] = {
        "name": args.name,
        "base_models": [{"name": "base", "path": args.base, **revision}],
        "adapters": adapters,
        "finetune": None,
        "safety": safety,
        "judges": [{"name": j} for j in (args.judge or ["keyword_refusal"])],
        "generation": generation,
        "decoding": {"max_new_tokens": args.max_new_tokens},
    }
    if args.task:
        data["task"] = {
            **_split_spec(args.task, "task"),
            **({"test_limit": args.limit} if args.limit else {}),
        }
    if args.output:
        data["output_dir"] = str(Path(args.output).resolve())
    if args.organism_dir:
        data["organism"] = {"dir": str(Path(args.organism_dir).resolve())}
    return data


def _cmd_report(args: argparse.Namespace) -> int:
    from capsafe.pipeline import REPORT_FILE, STORE_FILE
    from capsafe.report import write_report
    from capsafe.store import Store

    folder = Path(args.dir)
    db = folder / STORE_FILE
    if not db.is_file():
        raise FileNotFoundError(f"{folder}: no {STORE_FILE} here (is it an experiment folder?)")
    with Store(db) as store:
        out = Path(args.output) if args.output else folder / REPORT_FILE
        path = write_report(store, out, overrides=args.overrides)
        if args.parquet:
            from capsafe.report.parquet import write_parquet

            tables = write_parquet(store, folder / PARQUET_DIR)
            print(f"capsafe: parquet: {len(tables)} tables in {folder / PARQUET_DIR}")
    print(f"capsafe: report: {path}")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from capsafe.view import open_view

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: expected 0 (any free port) to 65535")
    server = None
    try:
        server = open_view(Path(args.dir), host=args.host, port=args.port)
        total = server.index.options.total
        print(f"capsafe: view: {total:,} responses of {args.dir} at {server.url} "
              "(Ctrl-C stops it)", flush=True)  # fmt: skip
        if not server.loopback:
            print(f"capsafe: view: listening on {args.host}: anyone who can reach this "
                  "machine can read the responses", file=sys.stderr)  # fmt: skip
        server.serve_forever()
    except KeyboardInterrupt:
        print("capsafe: view: stopped")
    finally:
        if server is not None:
            server.server_close()
            server.index.store.close()
    return 0


def _cmd_organism_build(args: argparse.Namespace) -> int:
    from capsafe.organism import build_organism

    path = build_organism(Path(args.dir), seed=args.seed, steps=args.steps, progress=not args.quiet)
    print(f"capsafe: organism built in {path}")
    if not args.no_twin:  # SafeLoRA's reference: the same build without the refusal data
        from capsafe.organism.build import ensure_unaligned

        twin = ensure_unaligned(path, seed=args.seed, progress=not args.quiet)
        print(f"capsafe: its unaligned twin built in {twin}")
    return 0


def _pairs(values: Sequence[str] | None, flag: str, form: str) -> list[tuple[str, str]]:
    """KEY=VALUE command-line items as pairs; anything else is one clear error."""
    out = []
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} {item!r}: expected {form}")
        out.append((key, value))
    return out


AUDIT_COLUMNS = ("prompt", "response", "labels", "id", "category", "adjudicated", "finish_reason")


def _audit_inputs(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    """The audit's judges and their arguments, every option checked before anything runs."""
    if bool(args.preset) == bool(args.file):
        raise UserError("judges audit needs exactly one of --preset or --file")
    if args.preset and not args.data:
        raise UserError(f"--preset {args.preset} needs --data (the data set's folder)")
    if args.file and (args.column is None):
        raise UserError("--file needs --column prompt=... --column response=... "
                         "--column labels=...")  # fmt: skip
    for key, _ in _pairs(args.column, "--column", "FIELD=COLUMN"):
        if key not in AUDIT_COLUMNS:
            raise UserError(f"--column {key}=...: unknown field (known: {list(AUDIT_COLUMNS)})")
    _pairs(args.label_map, "--label-map", "THEIRS=OURS")
    if args.limit is not None and args.limit <= 0:
        raise UserError(f"--limit must be a positive number of items, got {args.limit}")
    names = args.judge or ["keyword_refusal"]
    try:
        judge_args = json.loads(args.judge_args) if args.judge_args else {}
    except json.JSONDecodeError as err:
        raise UserError(f"--judge-args is not valid JSON ({err.msg})") from None
    if not isinstance(judge_args, dict) or not all(
        isinstance(v, dict) for v in judge_args.values()
    ):
        raise UserError('--judge-args must map judge names to arguments, e.g. '
                         '\'{"keyword_refusal": {"phrase_list": "gcg"}}\'')  # fmt: skip
    unknown = sorted(set(judge_args) - set(names))
    if unknown:
        raise UserError(f"--judge-args names {unknown}, which no --judge gives (judges: {names})")
    if args.split_by is not None and args.split_by not in names:
        raise UserError(f"--split-by {args.split_by!r} is not one of the --judge names {names}")
    return names, judge_args


def _cmd_judges_audit(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from capsafe.audit.labelled import load_labelled, load_preset
    from capsafe.audit.render import (
        agreement_table,
        as_csv,
        as_html,
        as_text,
        judge_table,
        summary_lines,
    )
    from capsafe.audit.run import audit, judge_all, needs_running
    from capsafe.judges import JUDGES
    from capsafe.models import resolve_judge_args
    from capsafe.progress import quiet_libraries

    names, judge_args = _audit_inputs(args)
    if args.quiet:
        quiet_libraries()
    if args.preset:
        labelled = load_preset(args.preset, Path(args.data))
        if args.token_limit is not None:
            labelled = replace(labelled, token_limit=args.token_limit)
    else:
        columns: dict[str, object] = {
            k: v.split("+") if k == "labels" else v
            for k, v in _pairs(args.column, "--column", "FIELD=COLUMN")
        }
        labelled = load_labelled(
            Path(args.file),
            dimension=args.dimension,
            columns=columns,
            label_map=dict(_pairs(args.label_map, "--label-map", "THEIRS=OURS")),
            token_limit=bool(args.token_limit),
        )
    if args.limit:
        labelled = labelled.head(args.limit)
    organism = Path(args.organism_dir)
    judges = {
        n: JUDGES.create(
            n, where=f"--judge {n}", **resolve_judge_args(judge_args.get(n, {}), organism)
        )
        for n in names
    }
    split_by = args.split_by or next(
        (n for n, j in judges.items() if "coherent" in j.measures), None
    )
    if split_by is not None and "coherent" not in judges[split_by].measures:
        raise UserError(f"--split-by {split_by!r}: that judge does not measure coherence")
    # A judge that cannot be scored on this set is not run (the summary says it was skipped).
    running = {n: j for n, j in judges.items() if needs_running(j.measures, labelled.dimension)}
    verdicts = judge_all(running, labelled, progress=not args.quiet)
    result = audit(
        labelled, verdicts, {n: j.measures for n, j in judges.items()}, split_by,
        group_by=args.by,
    )  # fmt: skip
    print("\n".join(summary_lines(result)))
    print()
    print(as_text(judge_table(result)))
    print()
    print(as_text(agreement_table(result)))
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "judges.csv").write_text(as_csv(judge_table(result, None)), encoding="utf-8")
        (out / "agreement.csv").write_text(as_csv(agreement_table(result)), encoding="utf-8")
        command = "capsafe " + " ".join(sys.argv[1:])
        (out / "audit.html").write_text(as_html(result, command), encoding="utf-8")
        print(f"\ncapsafe: audit tables and report in {out}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from capsafe.backends import BACKENDS
    from capsafe.data import PROMPT_SETS, TASKS
    from capsafe.finetune.recipes import RECIPES, describe
    from capsafe.judges import JUDGES

    registry = {"judges": JUDGES, "backends": BACKENDS, "prompt-sets": PROMPT_SETS, "tasks": TASKS,
                "recipes": RECIPES}  # fmt: skip
    for name in registry[args.what].names():
        print(f"{name:16} {describe(name)}" if args.what == "recipes" else name)
        if args.verbose and args.what == "judges":
            from capsafe.judges.sources import describe as judge_source

            print("".join(f"    {line}\n" for line in judge_source(name)), end="")
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
        "--dry-run",
        action="store_true",
        help="print the plan, what is stored and its cost (work, tokens, GPU-hours per step); "
        "run nothing",
    )
    run.add_argument("--json", action="store_true", help="with --dry-run: print it as JSON")
    run.add_argument(
        "--executor",
        choices=["inprocess", "ray"],
        help="where the plan runs (default: the config's execution.engine, inprocess); ray "
        "joins or starts the cluster execution.address names (docs/execution.md)",
    )
    run.add_argument("--no-report", action="store_true", help="skip writing the HTML report")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    run.set_defaults(func=_cmd_run)

    ev = sub.add_parser(
        "evaluate",
        help="evaluate ready fine-tuned adapters beside their base (no fine-tuning)",
        description="Measure a base model and fine-tuned PEFT adapters of it side by side on "
        "the same prompts, through the same store and report as `capsafe run`. Give flags, or "
        "a YAML experiment with `finetune: null` and `adapters:`.",
        epilog="example: capsafe evaluate --base meta-llama/Llama-3.2-1B-Instruct "
        "--adapter tuned=./my-lora --benchmark harmbench=data/harmbench_behaviors_text_test.csv "
        "--benchmark xstest --judge keyword_refusal --task gsm8k --limit 100",
    )
    ev.add_argument("config", nargs="?", help="experiment YAML (instead of the flags below)")
    ev.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, as for run"
    )
    ev.add_argument(
        "--base",
        "--model",
        dest="base",
        help="base model: hub id, local folder or builtin:organism; with --backend openai, "
        "its served name",
    )
    ev.add_argument(
        "--adapter",
        action="append",
        metavar="[NAME=]PATH",
        help="a PEFT adapter folder or hub id (repeatable); with --backend openai, the served "
        "name of a fine-tuned model (a vLLM LoRA module, say)",
    )
    served = ev.add_argument_group("served models (--backend openai)")
    served.add_argument(
        "--backend",
        default="transformers",
        help="generation backend: transformers (default), vllm, or openai (an "
        "OpenAI-compatible server)",
    )
    served.add_argument("--base-url", help="the server's OpenAI-compatible root, e.g. "
                        "http://127.0.0.1:8000/v1")  # fmt: skip
    served.add_argument(
        "--revision",
        help="identifies what the served names serve (required with openai: change it when "
        "the weights behind a name change); otherwise the hub revision of --base",
    )
    served.add_argument("--api-key-env", help="environment variable holding the API key")
    served.add_argument("--concurrency", type=int, help="requests in flight (default 8)")
    ev.add_argument(
        "--benchmark",
        action="append",
        metavar="NAME[=PATH]",
        help="a safety prompt set, optionally read from a local file (repeatable; "
        "default: the organism's sets)",
    )
    ev.add_argument(
        "--judge",
        action="append",
        metavar="NAME",
        help="a judge (repeatable; default keyword_refusal)",
    )
    ev.add_argument("--task", metavar="NAME[=PATH]", help="a capability task to score")
    ev.add_argument(
        "--limit", type=int, help="prompts per benchmark and task items (a stable subset)"
    )
    ev.add_argument("--name", default="evaluate", help="experiment name (default: evaluate)")
    ev.add_argument("-o", "--output", help="experiment folder (default: runs/NAME)")
    ev.add_argument(
        "--organism-dir", help="where the built-in organism lives (default .capsafe/organism)"
    )
    ev.add_argument("--batch-size", type=int, default=32, help="generation batch size")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    ev.add_argument("--max-new-tokens", type=int, default=64, help="response length limit")
    ev.add_argument("--no-report", action="store_true", help="skip writing the HTML report")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    ev.set_defaults(func=_cmd_evaluate)

    report = sub.add_parser(
        "report", help="write the HTML report of an experiment folder from its store"
    )
    report.add_argument("dir", help="experiment folder (holds capsafe.db)")
    report.add_argument(
        "overrides",
        nargs="*",
        metavar="report.KEY=VALUE",
        help="change report settings without rerunning, e.g. "
        "'report.capability_target={accuracy: 0.5}', report.capability_benchmark=gsm8k/test, "
        "report.capability_format=chat, report.power_change=0.05, "
        "report.examples_per_checkpoint=3, report.explorer_sample=5000 (responses the "
        "explorer holds; `capsafe view DIR` shows all)",
    )
    report.add_argument("-o", "--output", help="report file (default: DIR/report.html)")
    report.add_argument(
        "--parquet",
        action="store_true",
        help=f"also write the store's tables as Parquet files in DIR/{PARQUET_DIR}/",
    )
    report.set_defaults(func=_cmd_report)

    view = sub.add_parser(
        "view",
        help="serve the report and every stored response in a local web explorer",
        description="Serve DIR's report.html and an explorer that pages through every stored "
        "response (the report holds a sample: report.explorer_sample) with the report "
        "explorer's filters, reading the store read-only. Ctrl-C stops it.",
        epilog="example: capsafe view runs/organism-quickstart --port 0  (then open the URL "
        "it prints; filters can be given in the URL, e.g. /#f:benchmark=organism/harmful"
        "&disagree=1)",
    )
    view.add_argument("dir", help="experiment folder (holds capsafe.db)")
    view.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves "
        "everyone who can reach it)",
    )
    view.add_argument(
        "--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)"
    )
    view.set_defaults(func=_cmd_view)

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
    build.add_argument(
        "--no-twin",
        action="store_true",
        help="skip the unaligned twin (DIR/unaligned, SafeLoRA's reference; built on first use)",
    )
    build.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    build.set_defaults(func=_cmd_organism_build)

    judges = sub.add_parser("judges", help="judge tools")
    judges_sub = judges.add_subparsers(dest="judges_command", required=True)
    au = judges_sub.add_parser(
        "audit",
        help="measure judges against human labels (accuracy, F1, kappa; agreement between judges)",
        description="Run judges on a human-labelled (prompt, response) file and report each "
        "judge's accuracy, precision, recall, F1 and Cohen's kappa against the human gold "
        "label with bootstrap CIs, per category, and the judges' agreement with each other, "
        "overall and split by a coherence judge's label.",
        epilog="presets: xstest (XSTest v2 model completions, refusal), harmbench_val "
        "(HarmBench classifier validation set, harmful). Example: capsafe judges audit "
        "--preset xstest --data ../shared/datasets/xstest --judge keyword_refusal -o audit/",
    )
    au.add_argument("--preset", choices=["xstest", "harmbench_val"], help="a built-in labelled set")
    au.add_argument("--data", help="the preset's data folder (as distributed upstream)")
    au.add_argument("--file", help="any labelled CSV/JSON/JSONL file (with --column)")
    au.add_argument(
        "--column",
        action="append",
        metavar="FIELD=COLUMN",
        help="for --file: prompt=, response=, labels=COL1+COL2, optional id=, category=, "
        "adjudicated=, finish_reason= (length/eos/stop)",
    )
    au.add_argument(
        "--dimension", choices=["harmful", "refusal"], default="harmful", help="for --file"
    )
    au.add_argument(
        "--label-map",
        action="append",
        metavar="THEIRS=OURS",
        help="for --file: map file labels to 1/0 (harmful) or full/partial/none (refusal)",
    )
    au.add_argument("--judge", action="append", metavar="NAME", help="a judge (repeatable)")
    au.add_argument(
        "--judge-args",
        metavar="JSON",
        help='per-judge args, e.g. \'{"keyword_refusal": {"phrase_list": "gcg"}}\'',
    )
    au.add_argument(
        "--organism-dir",
        default=".capsafe/organism",
        help="the organism whose guard `model: builtin:organism-guard` names",
    )
    au.add_argument("--split-by", metavar="JUDGE", help="coherence judge to split agreement by")
    au.add_argument(
        "--by",
        choices=["category", "source"],
        default="category",
        help="break each judge's metrics down by item category (default) or by source (the "
        "file or model that wrote the response: XSTest's five model files)",
    )
    au.add_argument(
        "--token-limit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the responses were generated under a token limit: one that stops mid-sentence "
        "was cut by it (truncated, not incoherent); the presets' data were (default there)",
    )
    au.add_argument("--limit", type=int, help="audit only the first N items")
    au.add_argument("-o", "--output", help="folder for judges.csv, agreement.csv, audit.html")
    au.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    au.set_defaults(func=_cmd_judges_audit)

    lister = sub.add_parser(
        "list", help="list registered judges, backends, prompt sets, tasks or training recipes"
    )
    lister.add_argument("what", choices=["judges", "backends", "prompt-sets", "tasks", "recipes"])
    lister.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="for judges: the source each was checked against, and which could not be verified",
    )
    lister.set_defaults(func=_cmd_list)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    # capsafe's own user errors (capsafe.errors.UserError: config, data, names, arguments,
    # a busy folder) and the operating system's word that a given path does not exist.
    return (UserError, FileNotFoundError, FileExistsError)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, with key=value overrides allowed anywhere among the flags
    (`capsafe run EXP.yaml --dry-run key=value` as well as before them)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    late = [a for a in extra if "=" in a and not a.startswith("-")]
    if hasattr(args, "overrides") and late:
        args.overrides = [*(args.overrides or []), *late]
        extra = [a for a in extra if a not in late]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
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
    except UnitsFailed as err:  # the rest of the run is stored; each unit is named
        print(f"capsafe: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("capsafe: interrupted; finished work is stored, rerun to resume", file=sys.stderr)
        return 130
    except Exception as err:
        # The machine, not capsafe: a full disk or a folder capsafe may not write. Said in
        # one line; every batch committed before it is in the store.
        reason = environment_error(err)
        if reason is not None and not os.environ.get("CAPSAFE_DEBUG"):
            print(f"capsafe: error: {reason}; finished work is stored, rerun to resume",
                  file=sys.stderr)  # fmt: skip
            return 2
        # Anything else is a bug in capsafe: its traceback follows this line.
        print(f"capsafe: internal error ({type(err).__name__}); this is a bug in capsafe, not "
              "in your input: please report it with the traceback below. Finished work is "
              "stored.", file=sys.stderr)  # fmt: skip
        raise


_DISK_FULL = ("no space left on device", "database or disk is full", "file write failed",
              "disk quota exceeded")  # fmt: skip
_READ_ONLY = ("read-only file system", "attempt to write a readonly database",
              "permission denied")  # fmt: skip


def environment_error(err: BaseException) -> str | None:
    """What a full disk or an unwritable folder looks like, in words, or None for anything
    else. torch's checkpoint writer says only "file write failed"; sqlite says "database or
    disk is full"; the operating system gives an errno."""
    where = f" ({err.filename})" if isinstance(err, OSError) and err.filename else ""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full{where}"
    if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"capsafe may not write here{where}: {err.strerror}"
    text = str(err).lower()
    if any(m in text for m in _DISK_FULL):
        return f"the disk is full, or a write failed for lack of space ({str(err)[:120]})"
    if any(m in text for m in _READ_ONLY):
        return f"capsafe may not write here ({str(err)[:120]})"
    return None


if __name__ == "__main__":
    sys.exit(main())
