"""The Ray executor on a local Ray cluster: the same store as in-process, units in parallel,
workers killed mid-unit and retried, a unit that keeps failing named after the rest is
stored, a killed driver resumed, and bad execution settings refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from capsafe.cli import main
from capsafe.cluster.driver import EXECUTION_DIR, TIMELINE_FILE
from capsafe.config import load_config
from capsafe.errors import UserError
from capsafe.pipeline import STORE_FILE, run_experiment
from capsafe.store import Store
from tests.conftest import REPO, normalised_dump, write_small_config

pytestmark = pytest.mark.slow

# Two runs (seeds), a CPU judge and a judge with a model (the organism's guard).
TWO_RUNS = {
    "finetune": {
        "grid": {"learning_rate": [3e-3], "rank": [4], "alpha": [8], "epochs": [2]},
        "seeds": [0, 1],
        "batch_size": 16,
    },
    "judges": [
        {"name": "keyword_refusal"},
        {"name": "llama_guard_3", "args": {"model": "builtin:organism-guard", "batch_size": 32}},
    ],
}


# One seed and two recipes: a baseline run and one that evaluates its capability after
# each epoch, on the fine-tuning worker, and stops at the first epoch reaching it (here:
# the first, which the reference run checks).
WITH_STOP = {
    **TWO_RUNS,
    "finetune": {
        **TWO_RUNS["finetune"],
        "seeds": [0],
        "recipes": [{"name": "baseline"}, {"name": "stop_at_target", "args": {"accuracy": 0.05}}],
    },
}
# The base and the baseline's 2 epochs; the stopped run's one checkpoint is its baseline
# twin's first (the same training, so the same adapter: one model, generated on once).
N_GENERATIONS = (1 + 2) * 32


def ray_settings(num_cpus: int = 2, hook: str | None = None, **more) -> dict:
    """A local cluster of num_cpus; `hook`: a tests.helpers.ray_faults function each worker
    runs as it starts."""
    env: dict = {"env_vars": {"PYTHONPATH": str(REPO)}}
    if hook:
        env["worker_process_setup_hook"] = f"tests.helpers.ray_faults.{hook}"
    return {"engine": "ray", "num_cpus": num_cpus, "runtime_env": env, **more}


def timeline(out_dir: Path) -> list[dict]:
    path = out_dir / EXECUTION_DIR / TIMELINE_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def spans(events: list[dict], prefix: str) -> dict[str, tuple[float, float]]:
    """unit -> (its last attempt's start, its end), for units named `prefix`..."""
    start, out = {}, {}
    for e in events:
        if not e["unit"].startswith(prefix):
            continue
        if e["event"] == "start":
            start[e["unit"]] = e["t"]
        elif e["event"] == "end":
            out[e["unit"]] = (start[e["unit"]], e["t"])
    return out


@pytest.fixture(scope="module")
def inprocess(tmp_path_factory, organism_dir):
    """The reference: the experiment run in-process (its folder, and what the run did)."""
    folder = tmp_path_factory.mktemp("inprocess")
    outcome = run_experiment(load_config(write_small_config(folder, organism_dir, "x",
                                                            **WITH_STOP)),
                             progress=False, report=False)  # fmt: skip
    with Store(folder / "x" / STORE_FILE) as store:
        assert len(store.checkpoints()) == 2 + 1  # the stopped run: epoch 1 only
        assert store.count("generations") == N_GENERATIONS
    return folder / "x", outcome


def test_ray_store_equals_inprocess_and_units_overlap(inprocess, small_config, capsys, monkeypatch):
    # 3 logical CPUs: the 2 runs train while a worker generates on what is stored.
    cfg = load_config(small_config("x", **WITH_STOP, execution=ray_settings(num_cpus=3)))
    outcome = run_experiment(cfg, progress=True, report=False)
    reference, done_here = inprocess
    assert normalised_dump(cfg.output_dir) == normalised_dump(reference)
    with Store(cfg.output_dir / STORE_FILE) as store:
        assert store.count("generations") == N_GENERATIONS
    did = (outcome.epochs_trained, outcome.generated, outcome.judged, outcome.scored)
    assert did == (done_here.epochs_trained, done_here.generated, done_here.judged,
                   done_here.scored)  # fmt: skip
    events = timeline(cfg.output_dir)
    train = spans(events, "finetune")
    assert len(train) == 2
    ends = sorted(end for _, end in train.values())
    assert sum(start < ends[0] for start, _ in train.values()) == 2, "the runs did not overlap"
    # A checkpoint is generated on as soon as its epoch is stored, while the runs train on.
    # (Each epoch is stored as it lands, and again from the run's result: a no-op.)
    stored = {(e["unit"], e["epoch"]) for e in events if e["event"] == "epoch stored"}
    assert len(stored) == 3
    with Store(cfg.output_dir / STORE_FILE) as store:
        checkpoints = [m.model_key[:12] for m in store.models() if m.run_id is not None]
    on_checkpoints = [start for unit, (start, _) in spans(events, "generate").items()
                      if unit.split(" ")[2] in checkpoints]  # fmt: skip
    assert min(on_checkpoints) < ends[-1], "no checkpoint was generated on during training"
    # One progress view on the driver: units done / running / queued per step.
    err = capsys.readouterr().err
    assert "[capsafe] ray: generate organism " in err and "finetune 2/2 done" in err
    assert "judge llama_guard_3 " in err and "score 1/1 done" in err
    # The same plan again: nothing to do, and no cluster started for it.
    import capsafe.cluster

    monkeypatch.setattr(capsafe.cluster, "ray_cluster", lambda cfg: pytest.fail("Ray started"))
    again = run_experiment(cfg, progress=False, report=False)
    assert (again.epochs_trained, again.generated, again.judged, again.scored) == (0, 0, 0, 0)


def _wait_for(pred, proc, what: str, timeout: float = 300.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = pred()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before {what}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def test_killed_workers_are_retried_and_a_killed_driver_resumes(inprocess, small_config):
    """Kill a fine-tuning worker mid-run, then a generation worker mid-batch: Ray runs both
    units again. Then kill the driver: the rerun resumes from the store. The store ends
    equal to the in-process one: no row lost, none twice."""
    path = small_config("x", **WITH_STOP, execution=ray_settings(hook="slow_generation"))
    out = load_config(path).output_dir
    proc = subprocess.Popen([sys.executable, "-m", "capsafe.cli", "run", str(path), "-q",
                             "--no-report"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:

        def epoch_stored():  # a run's first epoch is stored: kill it as it trains the second
            ev = [e for e in timeline(out) if e["event"] == "epoch stored"
                  and "stop_at_target" not in e["unit"]]  # fmt: skip
            return ev[0]["unit"] if ev else None

        killed_run = _wait_for(epoch_stored, proc, "an epoch was stored")
        pid = next(e["pid"] for e in timeline(out)
                   if e["unit"] == killed_run and e["event"] == "start")  # fmt: skip
        os.kill(pid, signal.SIGKILL)

        def generating():  # a generation worker in a batch (each takes a second here)
            ev = [e for e in timeline(out) if e["event"] == "start" and e["unit"][:8] == "generate"]
            return ev[-1] if ev else None

        batch = _wait_for(generating, proc, "a generation batch started")
        os.kill(batch["pid"], signal.SIGKILL)

        def both_retried():  # each killed unit started again, and a later batch was stored
            ev = timeline(out)
            again = {e["unit"]: e["attempt"] for e in ev if e["event"] == "start"}
            if again.get(killed_run) != 2 or again.get(batch["unit"]) != 2:
                return None
            return [e for e in ev if e["event"] == "stored" and e["unit"] == batch["unit"]]

        _wait_for(both_retried, proc, "both killed units ran again")
        proc.kill()  # the driver, as kill -9
        proc.wait()
    finally:
        proc.kill()
    events = timeline(out)
    # The killed run resumed from the epoch it had stored.
    starts = [e for e in events if e["unit"] == killed_run and e["event"] == "start"]
    assert [e["epochs_on_disk"] for e in starts] == [0, 1]
    with Store(out / STORE_FILE) as store:
        partial = store.count("generations")
    assert 0 < partial < N_GENERATIONS
    again = run_experiment(load_config(path), progress=False, report=False)
    assert again.generated > 0
    assert normalised_dump(out) == normalised_dump(inprocess[0])


def test_a_unit_that_keeps_failing_is_named_after_the_rest_is_stored(small_config, capsys):
    path = small_config("x", **{**TWO_RUNS, "judges": [{"name": "keyword_refusal"}]},
                        execution=ray_settings(hook="oom_on_seed_1", max_retries=1))  # fmt: skip
    assert main(["run", str(path), "-q", "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "1 unit(s) failed after 1 retries" in err
    assert "finetune organism lr=0.003 r=4 alpha=8 seed=1: " in err
    assert "CUDA out of memory" in err
    out = load_config(path).output_dir
    starts = [e for e in timeline(out) if e["event"] == "start" and e["unit"].endswith("seed=1")]
    assert len(starts) == 2  # the first try and its one retry
    assert "MemoryError" in (out / EXECUTION_DIR / "failures.log").read_text()
    # Everything else finished and is stored: the base and seed 0's two epochs, generated
    # on, judged and scored.
    with Store(out / STORE_FILE) as store:
        assert len(store.checkpoints()) == 2
        assert store.count("generations") == 3 * 32
        assert store.count("judgments") == 3 * 20 and store.count("scores") == 3 * 12


def test_bad_execution_settings_are_refused(small_config, capsys):
    bad = small_config("x", execution={"engine": "ray", "address": "nowhere"})
    assert main(["run", str(bad), "-q"]) == 2
    assert "execution.address" in capsys.readouterr().err
    gpu = ray_settings(resources={"generate": {"num_gpus": 1}})
    cfg = load_config(small_config("x", finetune=None, task=None, execution=gpu))
    with pytest.raises(UserError, match=r"execution.resources.generate: a unit asks for 1 CPU"):
        run_experiment(cfg, progress=False, report=False)
    assert not cfg.output_dir.exists()  # nothing was stored, so nothing is left behind


def test_executor_flag_overrides_the_config(small_config):
    from capsafe.cli import parse

    args = parse(["run", str(small_config("x")), "--executor", "ray", "decoding.max_new_tokens=8"])
    assert args.executor == "ray"
    with pytest.raises(SystemExit):
        parse(["run", str(small_config("x")), "--executor", "dask"])
    data = yaml.safe_load(small_config("x").read_text())
    assert "execution" not in data  # the default: in-process
    assert load_config(small_config("x")).execution.engine == "inprocess"
