"""The run folder of one fine-tuning run, and the crash-safe writes that fill it.

    out_dir/
      capsafe_run.json        what this run is (base, examples digest, hparams, seed);
                              a second run with other inputs is refused
      epoch-1/                adapter_config.json, adapter_model.safetensors (PEFT format)
        capsafe_epoch.json    epoch, train_loss, steps, seed, hparams, versions
      epoch-2/ ...
      capsafe_reported.json   epochs whose on_epoch callback has returned
      capsafe_stopped.json    the epoch a stop_when callback ended the run at (if it did)
      capsafe_failed.json     why training diverged (non-finite loss or weights), if it did;
                              the epochs before it are kept, none after
      trainer/checkpoint-N/   the Trainer's own latest checkpoint (optimizer, scheduler, RNG);
                              removed once every epoch is done

An epoch folder is written under a temporary name and renamed, so it either exists whole
or not at all. It is exported from the Trainer checkpoint of the same epoch, so a crash
between the two writes is repaired on the next call (see recover_epochs). Only the
finiteness check (non_finite_tensors) imports torch.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capsafe.errors import UserError

RUN_FILE = "capsafe_run.json"
EPOCH_FILE = "capsafe_epoch.json"
REPORTED_FILE = "capsafe_reported.json"
STOPPED_FILE = "capsafe_stopped.json"
FAILED_FILE = "capsafe_failed.json"
TRAINER_DIR = "trainer"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# What a Trainer checkpoint needs to resume from; trainer_state.json is written last, and
# rotation or an interrupted save can leave any subset of these behind.
_CHECKPOINT_FILES = (*ADAPTER_FILES, "optimizer.pt", "scheduler.pt", "trainer_state.json")
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class EpochCheckpoint:
    """One finished epoch of a run: its adapter and how training went up to it."""

    epoch: int  # 1-based
    adapter_dir: Path  # holds adapter_config.json + adapter_model.safetensors (PEFT format)
    train_loss: float  # mean training loss over that epoch (nats per completion token)
    steps: int  # optimizer steps done so far, over all epochs


class RunConflictError(UserError):
    """out_dir already holds a run with other inputs; resuming it would mix two runs."""


def epoch_dir(out_dir: Path, epoch: int) -> Path:
    return out_dir / f"epoch-{epoch}"


# --- durable writes ---------------------------------------------------------------


def _fsync_path(path: Path) -> None:
    # A directory is fsynced so that a rename or a new entry in it survives a power cut.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems do not fsync directories
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` so that readers see the old file or the new, never half."""
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{uuid.uuid4().hex}")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


# --- run identity ------------------------------------------------------------------


def claim_run_dir(out_dir: Path, identity: Mapping[str, Any], digest: str) -> None:
    """Record the run's identity in out_dir, or check that the one recorded is the same.

    Raises RunConflictError naming the fields that differ.
    """
    run_file = out_dir / RUN_FILE
    if run_file.is_file():
        recorded = read_json(run_file)
        if recorded.get("digest") == digest:
            return
        old = recorded.get("identity", {})
        differ = sorted(k for k in {*old, *identity} if old.get(k) != identity.get(k))
        raise RunConflictError(
            f"{out_dir} holds another fine-tuning run (differs in: {', '.join(differ)}); "
            "use a new out_dir for these inputs, or delete that folder to start over"
        )
    leftovers = [p.name for p in out_dir.iterdir() if p.name.startswith("epoch-")]
    if (out_dir / TRAINER_DIR).exists():
        leftovers.append(TRAINER_DIR)
    if leftovers:
        raise RunConflictError(
            f"{out_dir} holds {', '.join(sorted(leftovers))} but no {RUN_FILE}, so it cannot "
            "be resumed safely; use a new out_dir or delete that folder"
        )
    write_json_atomic(run_file, {"digest": digest, "identity": dict(identity)})


@contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on out_dir, so two processes never train into one run."""
    from capsafe.locking import folder_lock

    with folder_lock(out_dir, "fine-tuning into this run folder"):
        yield


# --- epoch folders -----------------------------------------------------------------


def read_epochs(out_dir: Path) -> list[EpochCheckpoint]:
    """The finished epochs in out_dir, in order; they must be 1..k without gaps."""
    found = []
    for path in out_dir.glob("epoch-*"):
        if path.is_dir() and (path / EPOCH_FILE).is_file():
            meta = read_json(path / EPOCH_FILE)
            found.append(
                EpochCheckpoint(meta["epoch"], path, float(meta["train_loss"]), meta["steps"])
            )
    found.sort(key=lambda c: c.epoch)
    if [c.epoch for c in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(
            f"{out_dir} holds epochs {[c.epoch for c in found]}, not 1..k; "
            "the run folder was edited by hand, delete it to start over"
        )
    return found


def canonical_adapter_config(raw: bytes) -> bytes:
    """adapter_config.json with its target_modules sorted.

    PEFT expands "all-linear" into a set of module names and saves that set as a list, in
    an order that changes with Python's string hashing from process to process; sorted, the
    same adapter has the same bytes (and the same content hash) wherever it was trained.
    """
    config = json.loads(raw)
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _adapter_bytes(folder: Path) -> dict[str, bytes]:
    config, weights = ADAPTER_FILES
    return {
        config: canonical_adapter_config((folder / config).read_bytes()),
        weights: (folder / weights).read_bytes(),
    }


def export_epoch(checkpoint: Path, out_dir: Path, meta: Mapping[str, Any]) -> EpochCheckpoint:
    """Copy the adapter of a Trainer checkpoint taken at an epoch's end to out_dir/epoch-k.

    `meta` (seed, hparams, versions, ...) is written into capsafe_epoch.json beside the
    epoch, train loss and step count read from the checkpoint. An epoch folder that already
    exists is kept: it is what earlier calls reported.
    """
    state = read_json(checkpoint / "trainer_state.json")
    epoch, steps = round(state["epoch"]), int(state["global_step"])
    losses = [h["loss"] for h in state["log_history"] if "loss" in h and h["step"] == steps]
    if abs(state["epoch"] - epoch) > 1e-6 or not losses:
        raise RuntimeError(f"{checkpoint} was not taken at the end of an epoch")
    if not math.isfinite(losses[-1]):
        raise TrainingDiverged(f"epoch {epoch}: train loss is {losses[-1]}", steps)
    bad = non_finite_tensors(checkpoint)
    if bad:
        raise TrainingDiverged(
            f"epoch {epoch}: {len(bad)} adapter tensor(s) hold inf/nan (e.g. {bad[0]})", steps
        )
    final = epoch_dir(out_dir, epoch)
    if final.is_dir():
        if _adapter_bytes(checkpoint) != _adapter_bytes(final):
            warnings.warn(
                f"epoch {epoch} was trained again after a crash and came out different from "
                f"the stored {final} (non-deterministic kernels?); keeping the stored one",
                stacklevel=2,
            )
        return next(c for c in read_epochs(out_dir) if c.epoch == epoch)
    ck = EpochCheckpoint(epoch, final, float(losses[-1]), steps)
    tmp = out_dir / f"{_TMP_PREFIX}{final.name}.{uuid.uuid4().hex}"
    tmp.mkdir()
    for name, data in _adapter_bytes(checkpoint).items():
        (tmp / name).write_bytes(data)
    epoch_meta = {**meta, "epoch": epoch, "train_loss": ck.train_loss, "steps": steps}
    (tmp / EPOCH_FILE).write_text(json.dumps(epoch_meta, indent=2, sort_keys=True) + "\n")
    for path in tmp.iterdir():
        with path.open("rb") as f:
            os.fsync(f.fileno())
    _fsync_path(tmp)
    os.rename(tmp, final)
    _fsync_path(out_dir)
    return ck


def remove_temporaries(out_dir: Path) -> None:
    """Delete what an interrupted write left behind (never a finished epoch)."""
    for path in out_dir.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


# --- the Trainer's checkpoints ---------------------------------------------------------


def _step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def _is_complete(checkpoint: Path) -> bool:
    if not all((checkpoint / name).is_file() for name in _CHECKPOINT_FILES):
        return False
    try:
        read_json(checkpoint / "trainer_state.json")
    except ValueError:  # cut off while being written
        return False
    return True


def trainer_checkpoints(out_dir: Path) -> list[Path]:
    """Complete Trainer checkpoints, oldest first; incomplete ones are deleted."""
    complete = []
    for path in (out_dir / TRAINER_DIR).glob("checkpoint-*"):
        if not path.name.rsplit("-", 1)[1].isdigit():
            continue
        if _is_complete(path):
            complete.append(path)
        else:
            shutil.rmtree(path)
    return sorted(complete, key=_step)


def recover_epochs(out_dir: Path, meta: Callable[[], Mapping[str, Any]]) -> None:
    """Export the epoch of any Trainer checkpoint whose epoch folder a crash prevented;
    `meta()` gives export_epoch's meta, asked for only when there is something to export."""
    for checkpoint in trainer_checkpoints(out_dir):
        state = read_json(checkpoint / "trainer_state.json")
        if not epoch_dir(out_dir, round(state["epoch"])).is_dir():
            export_epoch(checkpoint, out_dir, meta())


def remove_trainer_state(out_dir: Path) -> None:
    shutil.rmtree(out_dir / TRAINER_DIR, ignore_errors=True)


# --- which epochs the caller has seen ---------------------------------------------------


def reported_epochs(out_dir: Path) -> set[int]:
    path = out_dir / REPORTED_FILE
    return set(read_json(path)["epochs"]) if path.is_file() else set()


def mark_reported(out_dir: Path, epoch: int) -> None:
    epochs = sorted(reported_epochs(out_dir) | {epoch})
    write_json_atomic(out_dir / REPORTED_FILE, {"epochs": epochs})


# --- where a run stopped early -----------------------------------------------------------


def stopped_epoch(out_dir: Path) -> int | None:
    """The epoch a stop_when callback ended the run at, or None."""
    path = out_dir / STOPPED_FILE
    return int(read_json(path)["epoch"]) if path.is_file() else None


def mark_stopped(out_dir: Path, epoch: int) -> None:
    write_json_atomic(out_dir / STOPPED_FILE, {"epoch": epoch})


class TrainingDiverged(RuntimeError):
    """A run's loss or weights became non-finite (inf or nan): it is stopped and recorded as
    failed, never evaluated from that point on."""

    def __init__(self, reason: str, step: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.step = reason, step


def failure(out_dir: Path) -> dict[str, Any] | None:
    """Why the run failed ({"reason", "step", "epochs_kept"}), or None. A failed run is not
    trained again: the same inputs diverge the same way."""
    path = out_dir / FAILED_FILE
    return read_json(path) if path.is_file() else None


def mark_failed(out_dir: Path, err: TrainingDiverged) -> None:
    kept = len(read_epochs(out_dir))
    write_json_atomic(
        out_dir / FAILED_FILE, {"reason": err.reason, "step": err.step, "epochs_kept": kept}
    )


def non_finite_tensors(adapter_dir: Path) -> list[str]:
    """The names of the adapter's tensors holding inf or nan (read one at a time)."""
    import torch
    from safetensors import safe_open

    bad = []
    with safe_open(str(Path(adapter_dir) / ADAPTER_FILES[1]), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            if not torch.isfinite(f.get_tensor(name)).all():
                bad.append(name)
    return bad
