"""finetune.report_to: training metrics in the user's tracker, and nothing else changed.

    pytest tests/test_tracking.py -q      # about half a minute on 2 CPU cores

The organism is fine-tuned briefly with report_to: [tensorboard] and read back with
TensorBoard's own EventAccumulator; the same run with report_to: none must write no
tracking files and come out byte for byte the same, under the same run key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from capsafe.config import ConfigError, load_config
from capsafe.finetune.tracking import TRACKERS, Tracker, Tracking, check_trackers, tracker_env
from capsafe.pipeline import load_inputs
from capsafe.plan import plan_runs

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

FINETUNE = {
    "grid": {"learning_rate": [3e-3], "rank": [4], "alpha": [8], "epochs": [2]},
    "seeds": [0],
    "batch_size": 16,
}
TASK = {"name": "organism_arithmetic", "train_limit": 48, "test_limit": 12}  # 3 steps/epoch


def _config(small_config, name: str, **finetune):
    return load_config(small_config(name, task=TASK, finetune={**FINETUNE, **finetune}))


def _train(cfg, organism_dir: Path, tmp_path: Path):
    """Fine-tune the config's one run on the organism; (run, its checkpoints)."""
    from capsafe.keys import folder_content_hash
    from capsafe.plan import base_model_key
    from capsafe.store import Store
    from capsafe.training import finetune_run

    inputs = load_inputs(cfg, progress=False)
    with Store(tmp_path / f"{cfg.name}.db") as store:
        base_key = base_model_key(folder_content_hash(organism_dir, store))
        (run,) = plan_runs(cfg, "organism", base_key, inputs.recipes)
        rows, trained = finetune_run(cfg, run, organism_dir, store, _no_eval, False)
        assert trained == 2
        return run, store.checkpoints(run.run_id)


def _no_eval(model):
    raise AssertionError("no recipe here asks for an evaluation")


def _adapter(checkpoint) -> bytes:
    return (Path(checkpoint.adapter_dir) / "adapter_model.safetensors").read_bytes()


def test_tensorboard_gets_the_loss_of_every_epoch_and_changes_no_result(
    small_config, organism_dir, tmp_path, monkeypatch
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from capsafe.training import tracker_run_name

    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    tracked = _config(small_config, "tracked", report_to=["tensorboard"])
    run, ckpts = _train(tracked, organism_dir, tmp_path)
    name = tracker_run_name(run, run.rounds[0])
    assert name == f"organism-baseline-lr0.003-r4-a8-s0-{run.run_id[:16]}"
    assert run.out_dir.name == run.run_id[:16]  # the tracker run names its run folder
    folder = tracked.output_dir / "tracking" / "tensorboard" / name
    assert list(folder.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(folder))
    events.Reload()
    losses = events.Scalars("train/loss")
    # One point per logging step (the epoch's end), the loss its checkpoint recorded.
    assert [e.step for e in losses] == [c.steps for c in ckpts] == [3, 6]
    assert [e.value for e in losses] == pytest.approx([c.train_loss for c in ckpts])
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ  # set for the run only

    plain = _config(small_config, "plain")
    assert plain.finetune.report_to == []
    plain_run, plain_ckpts = _train(plain, organism_dir, tmp_path)
    assert not (plain.output_dir / "tracking").exists()
    assert plain_run.run_id == run.run_id and plain_run.settings == run.settings
    assert [_adapter(c) for c in plain_ckpts] == [_adapter(c) for c in ckpts]
    assert [c.train_loss for c in plain_ckpts] == [c.train_loss for c in ckpts]


def test_report_to_is_no_part_of_the_run_key(small_config):
    def runs(report_to):
        cfg = _config(small_config, "keys", report_to=report_to)
        return plan_runs(cfg, "organism", "k", load_inputs(cfg, progress=False).recipes)

    (plain,), (tracked,) = runs("none"), runs(["tensorboard", "wandb", "mlflow"])
    assert plain.run_id == tracked.run_id and plain.out_dir == tracked.out_dir
    assert plain.settings == tracked.settings and "report_to" not in tracked.settings


def test_each_round_is_its_own_tracker_run(small_config):
    from capsafe.training import tracker_run_name

    cfg = _config(small_config, "rounds", rounds=[{"epochs": 1}, {"epochs": 1}])
    (run,) = plan_runs(cfg, "organism", "k", load_inputs(cfg, progress=False).recipes)
    names = [tracker_run_name(run, rd) for rd in run.rounds]
    assert names == [f"organism-baseline-lr0.003-r4-a8-s0-{run.run_id[:16]}/round-{k}"
                     for k in (1, 2)]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["tensorbord"], r"unknown tracker 'tensorbord' \(did you mean 'tensorboard'\?\)"),
        ("all", "name the trackers to report to"),
        (["none", "wandb"], '"none" stands alone'),
        (["wandb", "wandb"], "trackers repeat"),
        (3, 'give "none", a tracker name or a list'),
    ],
)
def test_report_to_names_only_known_trackers(small_config, value, message):
    with pytest.raises(ConfigError, match=r"finetune\.report_to: .*" + message):
        _config(small_config, "bad", report_to=value)


def test_report_to_reads_none_one_name_or_a_list(small_config):
    assert _config(small_config, "a").finetune.report_to == []  # the default
    assert _config(small_config, "b", report_to="none").finetune.report_to == []
    assert _config(small_config, "c", report_to="wandb").finetune.report_to == ["wandb"]
    both = _config(small_config, "d", report_to=["mlflow", "tensorboard"])
    assert both.finetune.report_to == ["mlflow", "tensorboard"]


def test_trackers_are_transformers_integrations():
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    assert set(TRACKERS) <= set(INTEGRATION_TO_CALLBACK)


def test_a_tracker_not_installed_is_refused_at_plan_time(small_config, monkeypatch, capsys):
    from capsafe.cli import main

    path = small_config("missing", finetune={**FINETUNE, "report_to": ["wandb"]})
    monkeypatch.setitem(TRACKERS, "wandb", Tracker("capsafe_no_such_module", "wandb"))
    with pytest.raises(ValueError, match=r"finetune\.report_to: wandb needs the 'wandb' package"):
        check_trackers(["wandb"])
    assert main(["run", str(path), "--dry-run", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install wandb" in err[0]


def test_tracker_env_fills_in_only_what_the_user_left_out(tmp_path):
    t = Tracking(("tensorboard", "wandb", "mlflow"), "run-1", tmp_path / "tracking", "exp")
    env = tracker_env(t, {"TENSORBOARD_LOGGING_DIR": "/elsewhere"})
    root = (tmp_path / "tracking").resolve()
    assert env == {
        "TENSORBOARD_LOGGING_DIR": str(root / "tensorboard" / "run-1"),  # per run, always
        "WANDB_PROJECT": "exp",
        "WANDB_DIR": str(root),
        "MLFLOW_EXPERIMENT_NAME": "exp",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    mine = {"WANDB_PROJECT": "p", "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    env = tracker_env(t, mine)
    assert "WANDB_PROJECT" not in env and "MLFLOW_TRACKING_URI" not in env
    assert env["MLFLOW_EXPERIMENT_NAME"] == "exp"
    assert tracker_env(Tracking(("tensorboard",), "r", tmp_path, "exp"), {}).keys() == {
        "TENSORBOARD_LOGGING_DIR"
    }


def test_each_run_ends_the_tracker_runs_it_opened(tmp_path, monkeypatch):
    """The Trainer leaves wandb's run open: the next run of a grid would log into it."""
    import types

    from capsafe.finetune.tracking import tracked

    ended = []
    wandb = types.SimpleNamespace(run=None)
    wandb.finish = lambda exit_code: (ended.append(exit_code), setattr(wandb, "run", None))
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    monkeypatch.delitem(sys.modules, "mlflow", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    t = Tracking(("wandb",), "r", tmp_path / "tracking", "exp")
    with tracked(t):
        assert os.environ["WANDB_DIR"] == str((tmp_path / "tracking").resolve())
        wandb.run = object()  # what the Trainer's callback opens
    with pytest.raises(RuntimeError), tracked(t):
        wandb.run = object()
        raise RuntimeError("training diverged")
    users = wandb.run = object()  # a run the caller opened itself is left open
    with tracked(t):
        pass
    assert ended == [0, 1] and wandb.run is users
