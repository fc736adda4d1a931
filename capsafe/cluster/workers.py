"""What runs on a Ray worker: the units of work, built on capsafe.steps, returning rows.

No unit writes the experiment's store. A fine-tuning run writes to a scratch store of its
own (for what it reads back: its checkpoints, and stop_at_target's evaluation) through a
`Relay` that also sends each write to the driver as it happens; the driver writes it (one
writer) and can generate on a checkpoint while the run trains on. Every unit tells the
driver when it starts and ends (`emit`), with its process id and node: the driver's
progress view and timeline are made of these.

Ray is not imported here: the driver wraps these with ray.remote.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from capsafe.config import ExperimentConfig, JudgeSpec
from capsafe.data.base import Task
from capsafe.plan import GenerationJob, Inputs, RunPlan
from capsafe.steps import (
    ScoreItem,
    capability_evaluator,
    generate_batch,
    judge_batch,
    load_backend,
    make_judge,
    score_batch,
    score_choices_batch,
)
from capsafe.store import CheckpointRow, GenerationRow, ModelRow, Store

# The store writes a fine-tuning run makes (finetune_run, and stop_at_target's evaluation).
RELAYED = ("put_run", "put_checkpoint", "put_model", "put_failure", "put_generations",
           "put_request_failures", "put_scores")  # fmt: skip


class EventSink:
    """The Ray actor units tell the driver through (by its name: an actor handle among an
    actor's constructor arguments would keep it from being restarted)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put(self, event: dict[str, Any]) -> None:
        self.items.append(event)

    def drain(self) -> list[dict[str, Any]]:
        out, self.items = self.items, []
        return out


_sinks: dict[str, Any] = {}
_last: dict[str, Any] = {}  # sink name -> this process's last put to it


def send(events: str, event: dict[str, Any]) -> None:
    """Put one event in the sink named `events`, without waiting: a Ray task blocked on
    ray.get lends its CPU to the next task, which would then run beside it for good."""
    import ray

    if events not in _sinks:
        _sinks[events] = ray.get_actor(events)
    _last[events] = _sinks[events].put.remote(event)


def emit(events: str, unit: str, what: str, **extra: Any) -> None:
    """Tell the driver a unit started or ended here; at its end, wait until every event the
    unit sent is in the sink (calls to one actor run in the order they were made), so that
    the driver has them by the time it has the unit's result."""
    send(events, {"unit": unit, "event": what, "t": time.time(), "pid": os.getpid(),
                  "host": socket.gethostname(), **extra})  # fmt: skip
    if what == "end":
        import ray

        ray.get(_last.pop(events))


class Relay:
    """The store a fine-tuning unit sees: reads from a scratch store, writes to it and to the
    driver (each write one event, applied there in order)."""

    def __init__(self, scratch: Store, events: str, unit: str) -> None:
        self._scratch, self._events, self._unit = scratch, events, unit

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._scratch, name)
        if name not in RELAYED:
            return target

        def write(rows: Any) -> Any:
            out = target(rows)
            send(self._events, {"unit": self._unit, "event": "rows", "method": name, "rows": rows})
            return out

        return write


def train_unit(
    cfg: ExperimentConfig,
    run: RunPlan,
    base_dir: str,
    stored: list[CheckpointRow],
    inputs: Inputs,
    events: str,
    unit: str,
) -> tuple[list[ModelRow], int]:
    """Fine-tune one run (resuming from its folder, as in-process); returns its checkpoints'
    model rows and how many epochs were trained now."""
    from capsafe.finetune.checkpoints import read_epochs
    from capsafe.training import finetune_run, round_dir

    # A retried run resumes from the epochs its folders hold: the timeline says how many.
    folders = [round_dir(run, rd) for rd in run.rounds]
    on_disk = sum(len(read_epochs(f)) for f in folders if f.is_dir())
    emit(events, unit, "start", epochs_on_disk=on_disk)
    with (
        tempfile.TemporaryDirectory(prefix="capsafe-unit-") as tmp,
        Store(Path(tmp) / "scratch.db") as scratch,
    ):
        for row in stored:  # what finetune_run asks of the store: the run's stored epochs
            scratch.put_checkpoint(row)
        relay: Any = Relay(scratch, events, unit)
        evaluate = None
        if run.recipe.recipe.stop_accuracy is not None:
            evaluate = capability_evaluator(cfg, inputs, relay, False)
        out = finetune_run(cfg, run, Path(base_dir), relay, evaluate, False)
    emit(events, unit, "end")
    return out


class GenerationWorker:
    """Keeps one base model loaded and swaps adapters: fed batches of one model's prompts."""

    def __init__(self, cfg: ExperimentConfig, base_path: str, base_name: str, events: str):
        self.cfg, self.base_path, self.base_name, self.events = cfg, base_path, base_name, events
        self.backend: Any = None
        self.adapter: Any = ()  # none set yet (None is the base itself)

    def _ready(self, model: ModelRow) -> Any:
        if self.backend is None:
            self.backend = load_backend(self.cfg, self.base_path, self.base_name)
        if model.adapter_dir != self.adapter:
            self.backend.set_adapter(model.adapter_dir)
            self.adapter = model.adapter_dir
        return self.backend

    def generate(self, unit: str, model: ModelRow, jobs: list[GenerationJob]) -> Any:
        emit(self.events, unit, "start")
        out = generate_batch(self._ready(model), jobs)
        emit(self.events, unit, "end")
        return out

    def score_choices(
        self, unit: str, model: ModelRow, jobs: list[GenerationJob], task: Task
    ) -> tuple[list[GenerationRow], list[Any]]:
        emit(self.events, unit, "start")
        out = score_choices_batch(self._ready(model), jobs, task)
        emit(self.events, unit, "end")
        return out


class JudgeWorker:
    """Keeps one judge (and its model) loaded: fed batches of responses."""

    def __init__(self, spec: JudgeSpec, args: dict[str, Any], events: str) -> None:
        self.spec, self.args, self.events = spec, args, events
        self.judge: Any = None

    def judge_batch(self, unit: str, batch: list[tuple[str, GenerationRow]]) -> list[Any]:
        emit(self.events, unit, "start")
        if self.judge is None:
            self.judge = make_judge(self.spec, self.args)
        out = judge_batch(self.spec, self.judge, batch)
        emit(self.events, unit, "end")
        return out


def score_unit(task: Task, items: list[ScoreItem], events: str, unit: str) -> list[Any]:
    emit(events, unit, "start")
    out = score_batch(task, items)
    emit(events, unit, "end")
    return out


def node_sees(paths: list[str]) -> list[str]:
    """The paths of `paths` this node cannot see (run on each node by the storage check)."""
    return [p for p in paths if not Path(p).exists()]
