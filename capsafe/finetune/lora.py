"""LoRA fine-tuning with one PEFT adapter per epoch, resumable after a crash.

    from capsafe.finetune import LoraHparams, finetune_lora
    epochs = finetune_lora("path/to/base", train_examples, LoraHparams(learning_rate=2e-3),
                           seed=0, out_dir=Path("runs/lr2e-3-seed0"))
    # epochs[k].adapter_dir loads with PeftModel.from_pretrained(base_model, adapter_dir)

Training is TRL's SFTTrainer on conversational prompt-completion rows, so the base
model's own chat template renders every example and the loss covers the assistant's
answer (and its end-of-turn token) only. Calling again with the same arguments after a
crash, at any point, resumes from the last finished epoch; see finetune_lora.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capsafe.finetune.checkpoints import (
    TRAINER_DIR,
    EpochCheckpoint,
    TrainingDiverged,
    claim_run_dir,
    export_epoch,
    failure,
    mark_failed,
    mark_reported,
    mark_stopped,
    read_epochs,
    recover_epochs,
    remove_temporaries,
    remove_trainer_state,
    reported_epochs,
    run_lock,
    stopped_epoch,
    trainer_checkpoints,
)
from capsafe.finetune.hparams import LoraHparams
from capsafe.keys import canonical_json, digest
from capsafe.records import TrainExample

if TYPE_CHECKING:
    from capsafe.finetune.tracking import Tracking

__all__ = ["EpochCheckpoint", "LoraHparams", "finetune_lora"]


def finetune_lora(
    base: str | os.PathLike[str],
    examples: Sequence[TrainExample],
    hparams: LoraHparams,
    seed: int,
    out_dir: Path,
    *,
    on_epoch: Callable[[EpochCheckpoint], None] | None = None,
    progress: bool = True,
    trust_remote_code: bool = False,
    system_prompt: str | None = None,
    device: str = "auto",
    init_adapter: Path | None = None,
    kl_beta: float = 0.0,
    stop_when: Callable[[EpochCheckpoint], bool] | None = None,
    tracking: Tracking | None = None,
) -> list[EpochCheckpoint]:
    """Fine-tune a LoRA adapter on `examples`; write one adapter per epoch to out_dir/epoch-k.

    Returns every epoch of the run, in order, including epochs finished by earlier calls.
    The result depends only on the inputs: same inputs on the same machine, byte-identical
    adapters (seed fixes data order, LoRA init and dropout).

    Resume: out_dir records the run's inputs (capsafe_run.json); a call with other inputs
    raises RunConflictError. A call with the same inputs skips the finished epochs and
    continues from the Trainer's checkpoint of the last one, which restores the adapter,
    optimizer, scheduler and RNG states exactly; the Trainer checkpoints are deleted once
    all epochs are done.

    on_epoch receives each epoch once its adapter is durably on disk, and an epoch counts
    as reported once the callback returns. An epoch whose callback never returned (the
    process died, or the callback raised) is delivered again, first thing, by the next
    call that passes an on_epoch. So delivery is at least once; the return value lists
    every epoch regardless, for callers that reconcile instead.

    device: "auto" (cuda with bf16 when available, else cpu in float32), "cpu", "cuda",
    "cuda:N". Local bases are read without network access. Raises ValueError for empty
    examples or a tokenizer without a chat template, FileNotFoundError for a missing base.

    init_adapter: continue training this PEFT adapter instead of a fresh one (the next round
    of a multi-round run; its content hash is part of the run's identity). kl_beta > 0 adds
    the kl_to_aligned penalty. stop_when(epoch) is asked after each epoch (and, on a resumed
    call, of the stored epochs first): True ends the run there, recorded in the run folder
    (capsafe_stopped.json), so a later call returns the same, shorter list of epochs.

    Divergence: when the loss or the trainable weights become inf or nan, training stops, the
    reason is recorded in the run folder (capsafe_failed.json, read with
    checkpoints.failure) and the epochs finished before it are returned; a later call with
    the same inputs does not train again.

    tracking: also report the Trainer's logs (one per epoch) to these trackers
    (capsafe.finetune.tracking); no part of the run's identity, and it changes no adapter.
    """
    from capsafe.backends.loading import resolve_source

    base = os.fspath(base)
    if not examples:
        raise ValueError("finetune_lora: no training examples")
    resolve_source(base, what="base model")  # a missing local path fails here, before any work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    identity = run_identity(base, examples, hparams, seed, system_prompt)
    if init_adapter is not None:
        from capsafe.keys import folder_content_hash

        identity["init_adapter_sha256"] = folder_content_hash(Path(init_adapter))
    if kl_beta > 0:
        identity["kl_beta"] = kl_beta
    with run_lock(out_dir):
        claim_run_dir(out_dir, identity, digest(**identity))
        remove_temporaries(out_dir)
        meta = functools.cache(lambda: _epoch_meta(identity, device))
        recover_epochs(out_dir, meta)
        _deliver(out_dir, on_epoch)
        stopped = stopped_epoch(out_dir)
        if stopped is None and stop_when is not None:
            stopped = _check_stored(out_dir, stop_when)
        failed = failure(out_dir) is not None
        if stopped is None and not failed and len(read_epochs(out_dir)) < hparams.epochs:
            try:
                _train(
                    base,
                    examples,
                    hparams,
                    seed,
                    out_dir,
                    meta(),
                    on_epoch=on_epoch,
                    progress=progress,
                    trust_remote_code=trust_remote_code,
                    system_prompt=system_prompt,
                    device=device,
                    init_adapter=init_adapter,
                    kl_beta=kl_beta,
                    stop_when=stop_when,
                    tracking=tracking,
                )
            except TrainingDiverged as err:
                mark_failed(out_dir, err)
                failed = True
            stopped = stopped_epoch(out_dir)
        epochs = read_epochs(out_dir)
        if stopped is not None:
            epochs = [e for e in epochs if e.epoch <= stopped]
        elif failed:
            remove_trainer_state(out_dir)  # nothing to resume: the same inputs diverge again
            return epochs
        elif len(epochs) != hparams.epochs:
            raise RuntimeError(f"training stopped after {len(epochs)} of {hparams.epochs} epochs")
        remove_trainer_state(out_dir)
        return epochs


def _check_stored(out_dir: Path, stop_when: Callable[[EpochCheckpoint], bool]) -> int | None:
    """Ask stop_when of the stored epochs in order (a crash may have come between an epoch's
    export and its answer); the first True is recorded as where the run stopped."""
    for ck in read_epochs(out_dir):
        if stop_when(ck):
            mark_stopped(out_dir, ck.epoch)
            return ck.epoch
    return None


def run_identity(
    base: str,
    examples: Sequence[TrainExample],
    hparams: LoraHparams,
    seed: int,
    system_prompt: str | None,
) -> dict[str, Any]:
    """Everything that determines a run's adapters, as recorded in capsafe_run.json."""
    rows = json.dumps([[ex.prompt, ex.response] for ex in examples], ensure_ascii=False)
    identity = {
        "base": base,
        "examples_sha256": hashlib.sha256(rows.encode("utf-8")).hexdigest(),
        "n_examples": len(examples),
        "hparams": asdict(hparams),
        "seed": seed,
        "system_prompt": system_prompt,
    }
    return json.loads(canonical_json(identity))  # as read back from JSON: tuples are lists


def _epoch_meta(identity: dict[str, Any], device: str) -> dict[str, Any]:
    from capsafe.finetune.sft import library_versions, resolve_train_device

    resolved = resolve_train_device(device)
    return {
        **identity,
        "run_digest": digest(**identity),
        "device": resolved.name,
        "dtype": resolved.dtype,
        "versions": library_versions(),
    }


def _deliver(out_dir: Path, on_epoch: Callable[[EpochCheckpoint], None] | None) -> None:
    """Hand every finished epoch that no earlier callback returned from to on_epoch."""
    if on_epoch is None:
        return
    seen = reported_epochs(out_dir)
    for ck in read_epochs(out_dir):
        if ck.epoch not in seen:
            on_epoch(ck)
            mark_reported(out_dir, ck.epoch)


def _train(
    base: str,
    examples: Sequence[TrainExample],
    hparams: LoraHparams,
    seed: int,
    out_dir: Path,
    meta: dict[str, Any],
    *,
    on_epoch: Callable[[EpochCheckpoint], None] | None,
    progress: bool,
    trust_remote_code: bool,
    system_prompt: str | None,
    device: str,
    init_adapter: Path | None,
    kl_beta: float,
    stop_when: Callable[[EpochCheckpoint], bool] | None,
    tracking: Tracking | None,
) -> None:
    from capsafe.finetune.sft import (
        EpochHook,
        build_trainer,
        collect_garbage,
        release,
        resolve_train_device,
        training_context,
    )
    from capsafe.finetune.tracking import tracked

    def on_saved(checkpoint: Path) -> bool:
        ck = export_epoch(checkpoint, out_dir, meta)
        _deliver(out_dir, on_epoch)
        if stop_when is not None and stop_when(ck):
            mark_stopped(out_dir, ck.epoch)
            return True
        return False

    resolved = resolve_train_device(device)
    checkpoints = trainer_checkpoints(out_dir)
    trainer = None
    try:
        with training_context(resolved), tracked(tracking):
            trainer = build_trainer(
                base,
                examples,
                hparams,
                seed,
                out_dir / TRAINER_DIR,
                device=resolved,
                progress=progress,
                trust_remote_code=trust_remote_code,
                system_prompt=system_prompt,
                callbacks=[EpochHook(on_saved)],
                init_adapter=init_adapter,
                kl_beta=kl_beta,
                tracking=tracking,
            )
            trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if checkpoints else None)
    finally:
        if trainer is not None:
            release(trainer)
        trainer = None
        collect_garbage(resolved)
