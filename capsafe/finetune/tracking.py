"""Training metrics sent to the user's experiment tracker, through the Trainer's `report_to`.

    finetune:
      report_to: [tensorboard]        # or wandb, mlflow; "none" (the default) sends nothing

    tensorboard --logdir runs/<experiment>/tracking/tensorboard

Each fine-tuning run (each round of a multi-round run) is one tracker run, named by its
settings and the first 16 characters of its run key, which name its folder under runs/
(capsafe.training.tracker_run_name). Local trackers write under the experiment's
output_dir/tracking/, never into the run folder, whose Trainer files capsafe deletes once
a run is done. The Trainer logs once per epoch (the epoch's mean loss is what each
checkpoint records), so each run has one train/loss point per epoch.

The trackers read their own environment variables (WANDB_API_KEY, WANDB_MODE,
MLFLOW_TRACKING_URI, ...); capsafe only fills in, where the user has not, a project named
after the experiment and a local folder (tracker_env). Where metrics go is no part of a
run's identity: changing report_to retrains nothing.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from capsafe.errors import UserError

TRACKING_DIR = "tracking"  # under the experiment's output_dir


class Tracker(NamedTuple):
    module: str  # what must be importable for the Trainer's callback to work
    package: str  # what to pip install for it


# Names as transformers' integrations spell them (report_to); the ones capsafe sets up.
TRACKERS = {
    "tensorboard": Tracker("tensorboard", "tensorboard"),
    "wandb": Tracker("wandb", "wandb"),
    "mlflow": Tracker("mlflow", "mlflow"),
}


@dataclass(frozen=True)
class Tracking:
    """Where one fine-tuning run's training metrics go."""

    report_to: tuple[str, ...]  # names from TRACKERS; empty: nowhere
    run_name: str  # the run's name in every tracker; "/" nests tensorboard folders
    folder: Path  # local trackers' files (output_dir/tracking)
    project: str  # wandb project and MLflow experiment, unless the environment names one


def tracker_names(value: object) -> list[str]:
    """finetune.report_to as written ("none", one tracker name, or a list of names) -> the
    names; a ValueError says what is wrong."""
    if value == "none":
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError('give "none", a tracker name or a list of tracker names')
    known = ", ".join(TRACKERS)
    for name in names:
        if name == "all":  # transformers' "all" means whatever happens to be installed
            raise ValueError(f"name the trackers to report to ({known}) instead of 'all'")
        if name == "none":
            raise ValueError('"none" stands alone, not in a list of trackers')
        if name not in TRACKERS:
            close = difflib.get_close_matches(name, TRACKERS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown tracker {name!r}{hint}; capsafe reports to {known}")
    if len(set(names)) != len(names):
        raise ValueError(f"trackers repeat: {names}")
    return names


def check_trackers(report_to: list[str], where: str = "finetune.report_to") -> None:
    """Refuse, before any work, a tracker whose package is not installed (the Trainer would
    fail only once the base model is loaded)."""
    for name in report_to:
        tracker = TRACKERS[name]
        if importlib.util.find_spec(tracker.module) is None:
            raise UserError(
                f"{where}: {name} needs the {tracker.package!r} package, which is not "
                f"installed: pip install {tracker.package}"
            )


def tracker_env(tracking: Tracking, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment variables the Trainer's tracker callbacks read, for this run.

    TensorBoard's folder is always the run's own (one folder for every run would interleave
    their curves); the wandb project and folder and MLflow's experiment and store are only
    given where `environ` has none.
    """
    folder = tracking.folder.resolve()
    env: dict[str, str] = {}
    if "tensorboard" in tracking.report_to:
        env["TENSORBOARD_LOGGING_DIR"] = str(folder / "tensorboard" / tracking.run_name)
    defaults: dict[str, str] = {}
    if "wandb" in tracking.report_to:
        defaults |= {"WANDB_PROJECT": tracking.project, "WANDB_DIR": str(folder)}
    if "mlflow" in tracking.report_to:
        # MLflow's own default store (sqlite:///mlflow.db), in the experiment's folder
        # rather than wherever capsafe was started.
        defaults |= {
            "MLFLOW_EXPERIMENT_NAME": tracking.project,
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        }
    env |= {k: v for k, v in defaults.items() if not environ.get(k)}
    return env


@contextmanager
def tracked(tracking: Tracking | None) -> Iterator[None]:
    """Set the run's tracker environment for building and training its Trainer, and end the
    tracker runs it started: the Trainer leaves a wandb run open (and an MLflow run, when
    training raised), and the next run of a grid would log into it."""
    if tracking is None or not tracking.report_to:
        yield
        return
    tracking.folder.mkdir(parents=True, exist_ok=True)
    env = tracker_env(tracking, os.environ)
    saved = {k: os.environ.get(k) for k in env}
    before = _open_runs()
    os.environ.update(env)
    failed = True
    try:
        yield
        failed = False
    finally:
        _end_runs(before, failed)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _OpenRuns(NamedTuple):
    wandb: Any  # wandb.run, or None
    mlflow: str | None  # the active MLflow run's id


def _open_runs() -> _OpenRuns:
    """The wandb and MLflow runs open now (a module is only looked at once imported)."""
    wandb, mlflow = sys.modules.get("wandb"), sys.modules.get("mlflow")
    active = mlflow.active_run() if mlflow else None
    return _OpenRuns(getattr(wandb, "run", None), active.info.run_id if active else None)


def _end_runs(before: _OpenRuns, failed: bool) -> None:
    now = _open_runs()
    if now.wandb is not None and now.wandb is not before.wandb:
        sys.modules["wandb"].finish(exit_code=1 if failed else 0)
    if now.mlflow is not None and now.mlflow != before.mlflow:
        sys.modules["mlflow"].end_run("FAILED" if failed else "FINISHED")
