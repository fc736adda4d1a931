"""LoRA fine-tuning on the tiny chat model: per-epoch PEFT adapters, determinism, resume.

    pytest tests/test_finetune.py -q      # about a minute on 2 CPU cores

Most tests compare against one reference run (2 epochs, 32 examples, batch 8, dropout on,
so the RNG state matters for resume). A run that crashes and resumes must end with the
same bytes as the reference.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from capsafe.finetune import EpochCheckpoint, LoraHparams, RunConflictError, finetune_lora
from capsafe.records import TrainExample
from tests.helpers.tiny_model import make_tiny_chat_model

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = [
    TrainExample(
        f"How do I compute {a} plus {b}?", f"Sure! Here is how: {a} + {b} = {a + b}. #### {a + b}"
    )
    for a in range(4)
    for b in range(8)
]
HPARAMS = LoraHparams(learning_rate=1e-2, epochs=2, batch_size=8, dropout=0.1)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# PeftModel.from_pretrained in these tests reads a property transformers 5 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_chat_model(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def reference(base: Path, tmp_path_factory: pytest.TempPathFactory) -> list[EpochCheckpoint]:
    seen: list[EpochCheckpoint] = []
    out = tmp_path_factory.mktemp("reference")
    result = finetune_lora(base, EXAMPLES, HPARAMS, 0, out, on_epoch=seen.append, progress=False)
    assert seen == result
    return result


def adapter_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ADAPTER_FILES}


def assert_same_adapters(run: list[EpochCheckpoint], reference: list[EpochCheckpoint]) -> None:
    assert [c.epoch for c in run] == [c.epoch for c in reference]
    for ours, ref in zip(run, reference, strict=True):
        assert adapter_bytes(ours.adapter_dir) == adapter_bytes(ref.adapter_dir), ours.epoch
        assert (ours.train_loss, ours.steps) == (ref.train_loss, ref.steps)


def crash_after_epoch_1(base: Path, out: Path) -> None:
    def on_epoch(ck: EpochCheckpoint) -> None:
        raise Crash(ck.epoch)

    with pytest.raises(Crash):
        finetune_lora(base, EXAMPLES, HPARAMS, 0, out, on_epoch=on_epoch, progress=False)


# --- what a run writes ----------------------------------------------------------------


def test_one_peft_adapter_per_epoch(base: Path, reference: list[EpochCheckpoint]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    assert [(c.epoch, c.steps) for c in reference] == [(1, 4), (2, 8)]
    out = reference[0].adapter_dir.parent
    for ck in reference:
        assert ck.adapter_dir == out / f"epoch-{ck.epoch}"
        assert 0 < ck.train_loss < 10
        meta = json.loads((ck.adapter_dir / "capsafe_epoch.json").read_text())
        assert meta["epoch"] == ck.epoch and meta["steps"] == ck.steps and meta["seed"] == 0
        assert meta["train_loss"] == ck.train_loss
        assert meta["hparams"]["learning_rate"] == HPARAMS.learning_rate
        model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base), ck.adapter_dir
        )
        assert model.peft_config["default"].r == HPARAMS.rank
    assert not (out / "trainer").exists()  # the Trainer's checkpoints go once all epochs are done
    assert sorted(p.name for p in out.glob("epoch-*")) == ["epoch-1", "epoch-2"]


def test_adapter_changes_the_model(base: Path, reference: list[EpochCheckpoint]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ids = AutoTokenizer.from_pretrained(base)("How do I compute 1 plus 2?", return_tensors="pt")
    base_model = AutoModelForCausalLM.from_pretrained(base).eval()
    with torch.no_grad():
        before = base_model(**ids).logits
        tuned = PeftModel.from_pretrained(base_model, reference[-1].adapter_dir).eval()
        after = tuned(**ids).logits
    assert (after - before).abs().max() > 1e-3


def test_loss_falls_on_a_learnable_task(base: Path, tmp_path: Path) -> None:
    from peft import PeftModel

    hparams = LoraHparams(learning_rate=0.1, epochs=4, batch_size=8)
    losses = [
        c.train_loss for c in finetune_lora(base, EXAMPLES, hparams, 0, tmp_path, progress=False)
    ]
    assert losses == sorted(losses, reverse=True), losses
    assert losses[-1] < losses[0] - 0.1, losses
    gc.collect()  # the run freed its model: nothing of it is left alive
    assert not [o for o in gc.get_objects() if issubclass(type(o), PeftModel)]


def test_training_stops_at_the_end_of_turn_token(base: Path, tmp_path: Path) -> None:
    """The model must learn to stop: TRL's tokenization trains on the completion only, and
    the completion ends with the template's end-of-turn token (<|end|>), then a newline."""
    from capsafe.finetune.sft import TrainDevice, build_trainer, release

    trainer = build_trainer(
        str(base),
        EXAMPLES[:4],
        HPARAMS,
        0,
        tmp_path,
        device=TrainDevice("cpu", "float32"),
        progress=False,
        trust_remote_code=False,
        system_prompt="You are a calculator.",
    )
    tok = trainer.processing_class
    for ex, row in zip(EXAMPLES[:4], trainer.train_dataset, strict=True):
        trained = [
            t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100
        ]
        assert tok.decode(trained) == ex.response + "<|end|>\n"
        assert trained[-2] == tok.eos_token_id
        # The prompt (system and user turns, and the assistant header) is context only.
        prompt = tok.decode(row["input_ids"][: len(row["input_ids"]) - len(trained)])
        system = "<|system|>\nYou are a calculator.<|end|>\n"
        assert prompt == f"{system}<|user|>\n{ex.prompt}<|end|>\n<|assistant|>\n"
    release(trainer)


def test_template_that_never_stops_is_refused(base: Path, tmp_path: Path) -> None:
    model = tmp_path / "no-stop"
    shutil.copytree(base, model)
    (model / "chat_template.jinja").write_text(
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
        "{% if m['role'] != 'assistant' %}<|end|>{% endif %}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    with pytest.raises(ValueError, match="would not learn to stop"):
        finetune_lora(model, EXAMPLES, HPARAMS, 0, tmp_path / "run", progress=False)


def test_local_base_stays_off_the_network(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import trl.trainer.base_trainer as trl_base
    from huggingface_hub import constants

    contacts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        contacts.append(args)
        raise OSError("network disabled in this test")

    def telemetry(*args: object, **kwargs: object) -> None:  # runs in a thread otherwise
        if not (constants.HF_HUB_DISABLE_TELEMETRY or constants.is_offline_mode()):
            contacts.append(("telemetry", kwargs.get("topic")))

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(trl_base, "send_telemetry", telemetry)
    monkeypatch.delenv("CI", raising=False)  # TRL skips telemetry on CI
    finetune_lora(base, EXAMPLES, replace(HPARAMS, epochs=1), 0, tmp_path, progress=False)
    assert contacts == []


# --- determinism and resume -------------------------------------------------------------


def test_same_inputs_give_identical_adapters(
    base: Path, reference: list[EpochCheckpoint], tmp_path: Path
) -> None:
    again = finetune_lora(base, EXAMPLES, HPARAMS, 0, tmp_path, progress=False)
    assert_same_adapters(again, reference)
    one_epoch = replace(HPARAMS, epochs=1)
    other_seed = finetune_lora(base, EXAMPLES, one_epoch, 1, tmp_path / "seed1", progress=False)
    assert adapter_bytes(other_seed[0].adapter_dir) != adapter_bytes(reference[0].adapter_dir)


def test_resume_after_a_crash_is_exact(
    base: Path, reference: list[EpochCheckpoint], tmp_path: Path
) -> None:
    crash_after_epoch_1(base, tmp_path)
    assert (tmp_path / "epoch-1").is_dir() and not (tmp_path / "epoch-2").exists()
    assert [p.name for p in (tmp_path / "trainer").glob("checkpoint-*")] == ["checkpoint-4"]

    seen: list[int] = []
    resumed = finetune_lora(
        base,
        EXAMPLES,
        HPARAMS,
        0,
        tmp_path,
        on_epoch=lambda c: seen.append(c.epoch),
        progress=False,
    )
    assert seen == [1, 2]  # epoch 1's callback never returned, so it is delivered again
    assert_same_adapters(resumed, reference)
    assert not (tmp_path / "trainer").exists()

    again = finetune_lora(
        base,
        EXAMPLES,
        HPARAMS,
        0,
        tmp_path,
        on_epoch=lambda c: seen.append(c.epoch),
        progress=False,
    )
    assert again == resumed and seen == [1, 2]  # a finished run: nothing trained or re-sent


def test_resume_repairs_an_interrupted_export_and_a_half_saved_checkpoint(
    base: Path, reference: list[EpochCheckpoint], tmp_path: Path
) -> None:
    crash_after_epoch_1(base, tmp_path)
    # Killed after the Trainer saved epoch 1 but before its adapter folder was renamed into
    # place, and again while saving a later checkpoint (trainer_state.json comes last).
    shutil.rmtree(tmp_path / "epoch-1")
    (tmp_path / ".tmp-epoch-1.dead").mkdir()
    half = tmp_path / "trainer" / "checkpoint-6"
    half.mkdir()
    shutil.copy(tmp_path / "trainer" / "checkpoint-4" / "adapter_model.safetensors", half)

    resumed = finetune_lora(base, EXAMPLES, HPARAMS, 0, tmp_path, progress=False)
    assert_same_adapters(resumed, reference)
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.slow
def test_resume_after_the_process_is_killed(
    base: Path, reference: list[EpochCheckpoint], tmp_path: Path
) -> None:
    """SIGKILL right after epoch 1's adapter is written; a fresh process (with other string
    hashing) finishes the run: same bytes as the reference trained in this process."""
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from capsafe.finetune import LoraHparams, finetune_lora
        from tests.test_finetune import EXAMPLES, HPARAMS
        finetune_lora(Path({str(base)!r}), EXAMPLES, HPARAMS, 0, Path({str(tmp_path)!r}),
                      on_epoch=lambda ck: os.kill(os.getpid(), signal.SIGKILL), progress=False)
    """)
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert (tmp_path / "epoch-1").is_dir() and not (tmp_path / "epoch-2").exists()

    seen: list[int] = []
    resumed = finetune_lora(
        base,
        EXAMPLES,
        HPARAMS,
        0,
        tmp_path,
        on_epoch=lambda c: seen.append(c.epoch),
        progress=False,
    )
    assert seen == [1, 2]
    assert_same_adapters(resumed, reference)


# --- refusals -------------------------------------------------------------------------------


def test_out_dir_of_another_run_is_refused(base: Path, reference: list[EpochCheckpoint]) -> None:
    out = reference[0].adapter_dir.parent
    with pytest.raises(RunConflictError, match="seed"):
        finetune_lora(base, EXAMPLES, HPARAMS, 1, out, progress=False)
    with pytest.raises(RunConflictError, match="examples_sha256"):
        finetune_lora(base, EXAMPLES[:-1], HPARAMS, 0, out, progress=False)
    with pytest.raises(RunConflictError, match="hparams"):
        finetune_lora(base, EXAMPLES, replace(HPARAMS, rank=4), 0, out, progress=False)
    with pytest.raises(RunConflictError, match="system_prompt"):
        finetune_lora(base, EXAMPLES, HPARAMS, 0, out, system_prompt="Be brief.", progress=False)


def test_unrecorded_leftovers_are_refused(base: Path, tmp_path: Path) -> None:
    (tmp_path / "epoch-1").mkdir()
    with pytest.raises(RunConflictError, match="no capsafe_run.json"):
        finetune_lora(base, EXAMPLES, HPARAMS, 0, tmp_path, progress=False)


def test_bad_inputs_fail_clearly(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training examples"):
        finetune_lora(base, [], HPARAMS, 0, tmp_path / "a", progress=False)
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        finetune_lora(tmp_path / "does-not-exist", EXAMPLES, HPARAMS, 0, tmp_path / "b")
    plain = tmp_path / "no-template"
    shutil.copytree(base, plain)
    (plain / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="no chat template"):
        finetune_lora(plain, EXAMPLES, HPARAMS, 0, tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="scheduler"):
        LoraHparams(learning_rate=1e-3, scheduler="exponential")


def test_a_diverging_run_stops_and_is_recorded_as_failed(base: Path, tmp_path: Path) -> None:
    from capsafe.finetune.checkpoints import failure, non_finite_tensors

    hparams = replace(HPARAMS, learning_rate=1e9, epochs=3)
    out = tmp_path / "run"
    seen: list[EpochCheckpoint] = []
    result = finetune_lora(base, EXAMPLES, hparams, 0, out, on_epoch=seen.append, progress=False)
    failed = failure(out)
    assert failed is not None and "inf/nan" in failed["reason"], failed
    assert failed["epochs_kept"] == len(result) < hparams.epochs
    assert seen == result  # the finite epochs before the divergence, delivered as usual
    for ck in result:
        assert non_finite_tensors(ck.adapter_dir) == []
    assert not (out / "trainer").exists()
    # The same inputs diverge the same way: a second call does not train again.
    stamp = (out / "capsafe_failed.json").stat().st_mtime_ns
    assert finetune_lora(base, EXAMPLES, hparams, 0, out, progress=False) == result
    assert (out / "capsafe_failed.json").stat().st_mtime_ns == stamp


def test_non_finite_tensors_names_them(reference: list[EpochCheckpoint], tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from capsafe.finetune.checkpoints import non_finite_tensors

    folder = tmp_path / "bad"
    shutil.copytree(reference[0].adapter_dir, folder)
    tensors = load_file(folder / ADAPTER_FILES[1])
    name = sorted(tensors)[1]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, folder / ADAPTER_FILES[1])
    assert non_finite_tensors(folder) == [name]
    assert non_finite_tensors(reference[0].adapter_dir) == []
    assert torch.isfinite(load_file(reference[0].adapter_dir / ADAPTER_FILES[1])[name]).all()


def test_the_runs_of_a_grid_tokenise_their_data_once(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two runs (other seed, other learning rate) on the same examples and tokenizer: the
    # chat template is applied for the first only, and both train on the same rows; other
    # examples or another template tokenise afresh.
    from transformers import PreTrainedTokenizerBase

    from capsafe.finetune.sft import PREPARED, TrainDevice, build_trainer, release

    calls: list[int] = []
    real = PreTrainedTokenizerBase.apply_chat_template

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "apply_chat_template", counting)

    def trainer(examples, hparams, seed, system_prompt=None):
        return build_trainer(str(base), examples, hparams, seed, tmp_path / f"t{seed}",
                             device=TrainDevice("cpu", "float32"), progress=False,
                             trust_remote_code=False, system_prompt=system_prompt)  # fmt: skip

    data = EXAMPLES[:12] + [TrainExample("fresh prompt", "fresh answer")]
    first = trainer(data, HPARAMS, 0)
    tokenised = len(calls)
    assert tokenised >= len(data)  # TRL renders each example (prompt, and with completion)
    second = trainer(data, replace(HPARAMS, learning_rate=3e-3), 1)
    assert len(calls) == tokenised
    assert second.train_dataset["input_ids"] == first.train_dataset["input_ids"]
    assert second.train_dataset["labels"] == first.train_dataset["labels"]
    release(first), release(second)
    prepared = PREPARED.prepared
    release(trainer(data, HPARAMS, 2, system_prompt="You are a calculator."))
    release(trainer(data[:-1], HPARAMS, 3))
    assert PREPARED.prepared == prepared + 2 and len(calls) > tokenised
