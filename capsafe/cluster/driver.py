"""The Ray executor: the same plan and steps as in-process, as units on a Ray cluster.

    fine-tuning run     -> a Ray task (resources.finetune), every run at once
    generation batch    -> a GenerationWorker actor of its base (resources.generate), which
                           keeps the base loaded and swaps adapters
    judgment batch      -> a JudgeWorker actor of its judge (resources.judge, or
                           resources.cpu for a judge without a model)
    scoring batch       -> a CPU task (resources.cpu)

A checkpoint is generated on as soon as its epoch is stored, while the runs train on (a
stop_at_target run's checkpoints once the run has ended: its evaluation generates on them
first, as in-process). Judging starts when every response is stored, scoring after it.
Only this process writes the store: units return rows, or send them as events, and each
batch is written as it arrives, so a driver killed mid-run resumes from the store like an
in-process run. A unit whose worker dies is run again by Ray (execution.max_retries); one
that still fails is reported, by name, once everything else has finished and been stored.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capsafe.cluster.progress import ClusterProgress
from capsafe.config import ExperimentConfig, UnitResources
from capsafe.cost import step_group
from capsafe.errors import UserError
from capsafe.plan import Inputs
from capsafe.progress import say
from capsafe.steps import (
    SCORE_BATCH,
    Counts,
    choice_batches,
    generation_batches,
    judge_batches,
    judge_groups,
    judge_todo,
    judged_generations,
    make_judge,
    pending_generations,
    score_todo,
    store_generated,
    warn_too_long,
)
from capsafe.store import ModelRow, Store
from capsafe.training import run_label, stored_run

# A generation worker idle this long while runs train is released (its resources may be
# what a retried run waits for); the next checkpoint makes a new one, which loads the base.
IDLE_S = 10.0
EXECUTION_DIR = "execution"  # under output_dir: the timeline and failures of the last Ray run
TIMELINE_FILE = "timeline.jsonl"
FAILURES_FILE = "failures.log"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(
            'execution.engine: ray needs Ray, which is not installed: pip install -e ".[ray]"'
        ) from None
    return ray


@contextmanager
def ray_cluster(cfg: ExperimentConfig) -> Iterator[RayCluster]:
    """The cluster execution.address names, joined or started (and stopped after, if it was
    started here), with each step's unit resources checked against it. Entered before the
    store is opened, so that a cluster that cannot run the plan leaves nothing behind."""
    ray = import_ray()
    started = _connect(ray, cfg)
    try:
        yield RayCluster(ray, cfg)
    finally:
        if started:
            ray.shutdown()


class RayCluster:
    """A connected cluster and what one unit of each step asks of it."""

    def __init__(self, ray: Any, cfg: ExperimentConfig) -> None:
        self.ray, self.cfg = ray, cfg
        want = cfg.execution.resources
        self.resources = {
            "finetune": resources_of(ray, cfg, want.finetune, gpu=True),
            "generate": resources_of(ray, cfg, want.generate, gpu=not cfg.served),
            "judge": resources_of(ray, cfg, want.judge, gpu=True),
            "cpu": resources_of(ray, cfg, want.cpu, gpu=False),
        }
        for step, res in self.resources.items():
            check_fits(ray, res, f"execution.resources.{step}")

    def execute(
        self, inputs: Inputs, store: Store, bases: list[Any], clock: Any, progress: bool
    ) -> Counts:
        """Run the plan's pending work; returns the run's Counts (as _execute_here does)."""
        assert self.cfg.output_dir is not None
        check_shared_storage(self.ray, self.cfg, bases)
        folder = self.cfg.output_dir / EXECUTION_DIR
        folder.mkdir(parents=True, exist_ok=True)
        driver = _Driver(self, inputs, store, bases, folder, progress)
        counts = driver.run(clock)
        if driver.failed:
            counts.failures = driver.failure_message()
        return counts


def _connect(ray: Any, cfg: ExperimentConfig) -> bool:
    """Join or start the cluster; says whether this call started Ray (and must stop it)."""
    import logging

    if ray.is_initialized():  # a caller's own ray.init (e.g. a notebook's) is used as it is
        return False
    ex = cfg.execution
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": False,  # workers' output stays in Ray's logs, not on our screen
        "runtime_env": ex.runtime_env or None,
    }
    if ex.address == "local":
        kwargs |= {"address": "local", "num_cpus": ex.num_cpus, "num_gpus": ex.num_gpus,
                   "include_dashboard": False}  # fmt: skip
    else:
        if ex.num_cpus is not None or ex.num_gpus is not None:
            raise UserError("execution.num_cpus/num_gpus: the size of a cluster started "
                            "here (address: local); a cluster joined has its own size")  # fmt: skip
        kwargs["address"] = ex.address
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise UserError(f"execution.address: no Ray cluster at {ex.address!r} ({e}); start "
                        "one with `ray start --head`, or use address: local") from None  # fmt: skip
    return True


def check_shared_storage(ray: Any, cfg: ExperimentConfig, bases: list[Any]) -> None:
    """On a cluster of several nodes, every node must see output_dir (adapters are written
    there and read by other nodes' workers), the organism and each base's folder: checked by
    a task on each node, before any work starts."""
    assert cfg.output_dir is not None
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    here = ray.get_runtime_context().get_node_id()
    others = [n for n in nodes if n["NodeID"] != here]
    if not others:
        return
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from capsafe.cluster.workers import node_sees

    token = cfg.output_dir / f".capsafe-shared-{os.getpid()}-{time.time_ns()}"
    token.write_text("capsafe storage check\n")
    paths = [str(token), *(str(b.folder) for b in bases if b.folder is not None)]
    if cfg.organism.dir.exists():
        paths.append(str(cfg.organism.dir))
    check = ray.remote(num_cpus=0)(node_sees)
    try:
        refs = {
            n["NodeManagerAddress"]: check.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(paths)
            for n in others
        }
        missing = {node: ray.get(ref) for node, ref in refs.items()}
    finally:
        token.unlink(missing_ok=True)
    bad = {node: [p.replace(str(token), str(cfg.output_dir)) for p in lost]
           for node, lost in missing.items() if lost}  # fmt: skip
    if bad:
        node, lost = next(iter(bad.items()))
        raise UserError(
            f"output_dir: {len(bad)} node(s) of the Ray cluster do not see this experiment's "
            f"files (e.g. node {node} lacks {lost[0]}); on several nodes, output_dir, the "
            "organism and the base models must be on storage every node mounts (NFS, Lustre)"
        )


def resources_of(ray: Any, cfg: ExperimentConfig, want: UnitResources, gpu: bool) -> dict:
    """A unit's Ray resources: the config's, else 1 CPU and, for a step that can use one, 1
    GPU where the cluster has GPUs and generation.device is not cpu."""
    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    default_gpus = 1.0 if gpu and cluster_gpus and cfg.generation.device != "cpu" else 0.0
    return {
        "num_cpus": 1.0 if want.num_cpus is None else want.num_cpus,
        "num_gpus": default_gpus if want.num_gpus is None else want.num_gpus,
    }


def check_fits(ray: Any, res: dict, where: str) -> None:
    """Refuse a unit no node can hold (Ray would wait for it forever)."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if not any(n.get("CPU", 0) >= res["num_cpus"] and n.get("GPU", 0) >= res["num_gpus"]
               for n in nodes):  # fmt: skip
        biggest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)))
        raise UserError(
            f"{where}: a unit asks for {res['num_cpus']:g} CPU(s) and {res['num_gpus']:g} "
            f"GPU(s), and no node of the cluster has that much (the largest: "
            f"{biggest.get('CPU', 0):g} CPU(s), {biggest.get('GPU', 0):g} GPU(s))"
        )


def capacity(ray: Any, res: dict) -> int:
    """How many units of `res` the cluster holds at once."""
    total = ray.cluster_resources()
    fits = []
    if res["num_gpus"]:
        fits.append(int(total.get("GPU", 0) // res["num_gpus"]))
    if res["num_cpus"]:
        fits.append(int(total.get("CPU", 0) // res["num_cpus"]))
    return max(1, min(fits) if fits else 1)


@dataclass
class _Item:
    """One unit waiting for a worker: how to call it, and what to do with its result."""

    unit: str
    call: Callable[[Any], Any]  # actor -> object ref
    done: Callable[[Any], None]
    affinity: Any = None  # a worker last given the same affinity is preferred (its adapter)


@dataclass
class _Pool:
    """The actors of one step part (a base's generation, a judge): made as work needs them,
    up to `size`, one unit in flight each; an idle one is released when told.

    A new actor is made only when the cluster has its resources free now, and only once the
    last one made has started its first unit: an actor still waiting for resources holds
    the unit given to it, which an actor that frees up meanwhile could have run."""

    step: str
    make: Callable[[], Any]
    size: int
    resources: dict[str, float]
    queue: deque[_Item] = field(default_factory=deque)
    idle: list[Any] = field(default_factory=list)
    affinity: dict[int, Any] = field(default_factory=dict)  # id(actor) -> last affinity
    idle_since: dict[int, float] = field(default_factory=dict)  # id(actor) -> monotonic s
    busy: int = 0
    starting: set[str] = field(default_factory=set)  # first units of actors not yet running

    def actor_for(self, item: _Item, may_make: bool, free: dict[str, float]) -> Any:
        for actor in self.idle:
            if self.affinity.get(id(actor)) == item.affinity:
                self.idle.remove(actor)
                return actor
        if self.idle:
            return self.idle.pop(0)
        want = {"CPU": self.resources["num_cpus"], "GPU": self.resources["num_gpus"]}
        fits = all(free.get(k, 0.0) >= v for k, v in want.items())
        if may_make and fits and not self.starting and self.busy < self.size:
            self.starting.add(item.unit)
            for k, v in want.items():  # taken, for the other pools this round
                free[k] = free.get(k, 0.0) - v
            return self.make()
        return None


class _Driver:
    def __init__(self, cluster: RayCluster, inputs, store, bases, folder: Path, progress: bool):
        import uuid

        from capsafe.cluster.workers import EventSink

        ray, cfg = cluster.ray, cluster.cfg
        self.ray, self.cfg, self.inputs, self.store = ray, cfg, inputs, store
        self.bases = bases
        self.events = f"capsafe-events-{uuid.uuid4().hex[:12]}"  # the sink's name
        self.sink = ray.remote(EventSink).options(name=self.events, num_cpus=0).remote()
        self.timeline = (folder / TIMELINE_FILE).open("w")
        self.failures_path = folder / FAILURES_FILE
        self.failures_path.unlink(missing_ok=True)
        self.view = ClusterProgress(progress)
        self.progress = progress
        self.inflight: dict[Any, tuple[str, str, Callable[[Any], None], Any]] = {}
        self.pools: list[_Pool] = []
        self.failed: list[tuple[str, str]] = []
        self.attempts: dict[str, int] = {}
        self.trains_waiting: set[str] = set()
        self.began: dict[str, float] = {}  # unit -> when its current attempt started
        self.busy: dict[str, float] = {}  # step group -> worker seconds of its units
        self.inputs_ref = ray.put(inputs)
        self.generated = 0
        ex = cfg.execution
        self.retries = ex.max_retries
        self.res_train, self.res_gen = cluster.resources["finetune"], cluster.resources["generate"]
        self.res_judge, self.res_cpu = cluster.resources["judge"], cluster.resources["cpu"]

    # -- the loop --------------------------------------------------------------------------

    def run(self, clock: Any) -> Counts:
        counts = Counts()
        say(self.progress, f"running on Ray: {self._cluster_line()}")
        try:
            counts.epochs = self._train_and_generate()
            counts.generated = self.generated
            stored_gens = self.store.generations()
            warn_too_long(stored_gens)
            counts.judged_by = self._judge(judged_generations(stored_gens))
            counts.scored = self._score(stored_gens)
        finally:
            self.view.close()
            self.timeline.close()
        # Steps overlap on a cluster: each step's time is its units' worker seconds, the
        # measure the cost estimate's GPU-hours are in.
        clock.seconds.update(self.busy)
        return counts

    def _cluster_line(self) -> str:
        total = self.ray.cluster_resources()
        nodes = sum(1 for n in self.ray.nodes() if n.get("Alive"))
        return (f"{nodes} node(s), {total.get('CPU', 0):g} CPU(s), {total.get('GPU', 0):g} "
                f"GPU(s); timeline in {self.timeline.name}")  # fmt: skip

    def _submit(self, step: str, unit: str, ref: Any, done: Callable[[Any], None], actor=None):
        """A unit sent to Ray (a pool's was queued when it was made)."""
        if actor is None:
            self.view.queued(step, unit)
        self.inflight[ref] = (step, unit, done, actor)

    def _wait(self) -> None:
        """Wait for a unit to end (or an event); apply events and finished units."""
        refs = list(self.inflight)
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=0.5) if refs else ([], [])
        if not refs:
            time.sleep(0.05)
        self._drain_events()
        for ref in ready:
            step, unit, done, actor = self.inflight.pop(ref)
            try:
                result = self.ray.get(ref)
            except Exception as e:  # the unit failed after its retries
                self._drain_events()  # what it sent before failing is stored
                self._fail(step, unit, e, actor)
                continue
            self._drain_events()
            done(result)
            self.view.done(unit)
            self._log(unit, "stored")
            if actor is not None:
                pool, handle = actor
                pool.busy -= 1
                pool.idle.append(handle)
                pool.idle_since[id(handle)] = time.monotonic()
        self.view.show()

    def _drain_events(self) -> None:
        for ev in self.ray.get(self.sink.drain.remote()):
            self._event(ev)

    def _event(self, ev: dict) -> None:
        unit = ev["unit"]
        if ev["event"] == "rows":  # a fine-tuning unit's store write, in its order
            method, rows = ev["method"], ev["rows"]
            new = getattr(self.store, method)(rows)
            if method == "put_generations":  # its capability evaluation's (stop_at_target)
                self.generated += new
            if method == "put_model" and rows.run_id is not None:
                self.on_checkpoint(rows)
            if method == "put_checkpoint":
                self._log(unit, "epoch stored", epoch=rows.epoch)
            return
        if ev["event"] == "start":
            self.attempts[unit] = self.attempts.get(unit, 0) + 1
            ev["attempt"] = self.attempts[unit]
            self.began[unit] = ev["t"]
            self.trains_waiting.discard(unit)
            for pool in self.pools:
                pool.starting.discard(unit)
            self.view.running(unit)
        elif ev["event"] == "end" and unit in self.began:
            group = step_group(self.view.step_of.get(unit, "other"))
            self.busy[group] = self.busy.get(group, 0.0) + ev["t"] - self.began.pop(unit)
        self._log(unit, ev["event"], **{k: v for k, v in ev.items() if k not in ("unit", "event")})

    def _log(self, unit: str, event: str, **extra: Any) -> None:
        extra.setdefault("t", time.time())
        self.timeline.write(json.dumps({"unit": unit, "event": event, **extra}) + "\n")
        self.timeline.flush()

    def _fail(self, step: str, unit: str, error: BaseException, actor) -> None:
        text = "".join(traceback.format_exception(error))
        last = str(error).strip().splitlines()
        cause = next((ln for ln in reversed(last) if ln.strip()), type(error).__name__)
        self.failed.append((unit, cause.strip()))
        with self.failures_path.open("a") as f:
            f.write(f"== {unit}\n{text}\n")
        self.view.failed(unit)
        self._log(unit, "failed", error=cause.strip())
        if actor is not None:  # its actor is gone (or broken): the pool makes another
            pool, handle = actor
            pool.busy -= 1
            pool.starting.discard(unit)
            self.ray.kill(handle)

    def failure_message(self) -> str:
        lines = [f"{len(self.failed)} unit(s) failed after {self.retries} retries; everything "
                 "else is stored, and a rerun retries only what is missing:"]  # fmt: skip
        lines += [f"  {unit}: {cause}" for unit, cause in self.failed]
        lines.append(f"tracebacks: {self.failures_path}")
        return "\n".join(lines)

    def _dispatch(self, may_make: Callable[[_Pool], bool]) -> None:
        free = self.ray.available_resources()
        for pool in self.pools:
            while pool.queue:
                actor = pool.actor_for(pool.queue[0], may_make(pool), free)
                if actor is None:
                    break
                item = pool.queue.popleft()
                pool.affinity[id(actor)] = item.affinity
                pool.busy += 1
                self._submit(pool.step, item.unit, item.call(actor), item.done, (pool, actor))

    def _release_idle(self, pools: list[_Pool], idle_for: float = 0.0) -> None:
        """End the pools' workers that have been idle `idle_for` seconds or more."""
        now = time.monotonic()
        for pool in pools:
            for actor in [a for a in pool.idle if now - pool.idle_since[id(a)] >= idle_for]:
                pool.idle.remove(actor)  # its process ends, and with it what it held
                self.ray.kill(actor, no_restart=True)

    # -- fine-tuning and generation ----------------------------------------------------------

    def _train_and_generate(self) -> int:
        """Every run's fine-tuning at once, and generation on each model as it is stored;
        returns the epochs trained."""
        from capsafe.cluster import workers

        train = self.ray.remote(workers.train_unit)
        self.gen_pools: dict[str, _Pool] = {}
        self.queued_models: set[str] = set()
        self.runs_left: dict[str, int] = {}
        self.epochs = 0
        self.task_ref = self.ray.put(self.inputs.task)
        for bw in self.bases:
            name = bw.row.base_name
            self.runs_left[name] = 0
            self.gen_pools[name] = self._generation_pool(bw)
            self._queue_generation(bw, bw.models)
            for run in bw.runs:
                finished = stored_run(run, bw.folder, self.store)
                if finished is not None:
                    self._queue_generation(bw, finished)
                    continue
                unit = f"finetune {name} {run_label(run)}"
                ref = train.options(**self.res_train, max_retries=self.retries,
                                    retry_exceptions=True).remote(
                    self.cfg, run, str(bw.folder), self.store.checkpoints(run.run_id),
                    self.inputs_ref, self.events, unit)  # fmt: skip
                self.runs_left[name] += 1
                self.trains_waiting.add(unit)
                self._submit("finetune", unit, ref, self._trained(bw))
        pools = self.pools = list(self.gen_pools.values())
        while self.inflight or any(p.queue for p in pools):
            # A worker is made only while no fine-tuning run waits to start, and one left idle
            # then is released: a run never waits on a worker that waits on the run. A run
            # retried after its worker died waits unseen, so a worker idle for IDLE_S is
            # released too.
            self._dispatch(lambda pool: not self.trains_waiting)
            self._release_idle(pools, 0.0 if self.trains_waiting else IDLE_S)
            # A base with no run left to train and nothing queued releases its workers.
            self._release_idle([self.gen_pools[n] for n, left in self.runs_left.items()
                                if not left and not self.gen_pools[n].queue])  # fmt: skip
            self._wait()
        self._release_idle(pools)
        return self.epochs

    def _generation_pool(self, bw) -> _Pool:
        from capsafe.cluster import workers

        actor_cls = self.ray.remote(workers.GenerationWorker)
        opts = dict(**self.res_gen, max_restarts=self.retries, max_task_retries=self.retries)
        name, path = bw.row.base_name, bw.row.base_path
        size = self.cfg.execution.workers or capacity(self.ray, self.res_gen)
        return _Pool(f"generate {name}", lambda: actor_cls.options(**opts).remote(
            self.cfg, path, name, self.events), size, self.res_gen)  # fmt: skip

    def _trained(self, bw) -> Callable[[Any], None]:
        def done(result: Any) -> None:
            rows, trained = result
            for row in rows:
                self.store.put_model(row)
            self.epochs += trained
            self.runs_left[bw.row.base_name] -= 1
            # Checkpoints not queued as their epoch was stored (stop_at_target's, a resumed
            # run's earlier epochs) are queued now.
            self._queue_generation(bw, rows)

        return done

    def on_checkpoint(self, model: ModelRow) -> None:
        """An epoch was stored by a running fine-tuning unit: generate on it now (unless its
        run evaluates as it goes, stop_at_target: then when the run has ended)."""
        for bw in self.bases:
            if bw.row.base_name != model.base_name:
                continue
            run = next((r for r in bw.runs if r.run_id == model.run_id), None)
            if run is not None and run.recipe.recipe.stop_accuracy is None:
                self._queue_generation(bw, [model])

    def _queue_generation(self, bw, models: list[ModelRow]) -> None:
        """Queue every pending batch of `models` (each model once: all its batches at once)."""
        pool = self.gen_pools[bw.row.base_name]
        fresh = [m for m in models if m.model_key not in self.queued_models]
        pending = pending_generations(self.cfg, fresh, self.inputs, self.store)
        self.queued_models |= {m.model_key for m in fresh}
        for m in pending.models:
            label = f"{m.base_name} {m.model_key[:12]}"
            batches = generation_batches(self.cfg, pending.jobs.get(m.model_key, []))
            for i, batch in enumerate(batches):
                unit = f"generate {label} batch {i + 1}/{len(batches)}"
                call = lambda a, u=unit, m=m, b=batch: a.generate.remote(u, m, b)  # noqa: E731
                pool.queue.append(_Item(unit, call, self._generated, m.model_key))
                self.view.queued(pool.step, unit)
            choices = choice_batches(self.cfg, pending.choices.get(m.model_key, []))
            for i, batch in enumerate(choices):
                unit = f"score options {label} batch {i + 1}/{len(choices)}"
                call = lambda a, u=unit, m=m, b=batch: a.score_choices.remote(  # noqa: E731
                    u, m, b, self.task_ref
                )
                pool.queue.append(_Item(unit, call, self._choices_scored, m.model_key))
                self.view.queued(pool.step, unit)

    def _generated(self, result: Any) -> None:
        rows, failures, _tokens = result
        self.generated += store_generated(self.store, rows, failures)

    def _choices_scored(self, result: Any) -> None:
        gens, scores = result
        self.store.put_generations(gens)
        self.store.put_scores(scores)

    # -- judging and scoring -------------------------------------------------------------------

    def _judge(self, safety_gens: list[Any]) -> dict[str, int]:
        from capsafe.cluster import workers
        from capsafe.judges.base import judge_model

        actor_cls = self.ray.remote(workers.JudgeWorker)
        base_dirs = {bw.row.base_name: bw.folder for bw in self.bases if bw.folder is not None}
        base_of = {m.model_key: m.base_name for m in self.store.models()}
        judged: dict[str, int] = {}
        self.pools = []
        for spec in self.cfg.judges:
            step = f"judge {spec.name}"
            judged[step] = 0
            for args, gens in judge_groups(self.cfg, spec, base_dirs, safety_gens, base_of):
                judge = make_judge(spec, args)  # for its name and version; loads nothing
                todo = judge_todo(spec, judge, gens, self.store)
                if hasattr(judge, "close"):
                    judge.close()
                if not todo:
                    continue
                uses_model = judge_model(spec.name, args) is not None
                res = self.res_judge if uses_model else self.res_cpu
                opts = dict(**res, max_restarts=self.retries, max_task_retries=self.retries)
                batches = judge_batches(todo)
                size = min(len(batches), self.cfg.execution.workers or capacity(self.ray, res))
                pool = _Pool(step, lambda s=spec, a=args, o=opts: actor_cls.options(**o).remote(
                    s, a, self.events), size, res)  # fmt: skip
                for i, batch in enumerate(batches):
                    unit = f"{step} {len(self.pools) + 1} batch {i + 1}/{len(batches)}"

                    def done(rows: Any, step: str = step) -> None:
                        judged[step] += self.store.put_judgments(rows)

                    call = lambda a, u=unit, b=batch: a.judge_batch.remote(u, b)  # noqa: E731
                    pool.queue.append(_Item(unit, call, done))
                    self.view.queued(step, unit)
                self.pools.append(pool)
        while self.inflight or any(p.queue for p in self.pools):
            self._dispatch(lambda pool: True)
            self._release_idle([p for p in self.pools if not p.queue])
            self._wait()
        self._release_idle(self.pools)
        return judged

    def _score(self, stored_gens: list[Any]) -> int:
        from capsafe.cluster import workers

        todo = score_todo(self.inputs, stored_gens, self.store)
        if not todo:
            return 0
        task = self.task_ref
        remote = self.ray.remote(workers.score_unit).options(**self.res_cpu,
                                                              max_retries=self.retries,
                                                              retry_exceptions=True)  # fmt: skip
        scored = [0]
        chunks = [todo[i : i + SCORE_BATCH] for i in range(0, len(todo), SCORE_BATCH)]
        for i, chunk in enumerate(chunks):
            unit = f"score batch {i + 1}/{len(chunks)}"

            def done(rows: Any) -> None:
                scored[0] += self.store.put_scores(rows)

            self._submit("score", unit, remote.remote(task, chunk, self.events, unit), done)
        while self.inflight:
            self._wait()
        return scored[0]
