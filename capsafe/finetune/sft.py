"""TRL's SFTTrainer set up for one LoRA run: data, device, config, and the epoch hook.

Imported only when training actually runs (torch, transformers, peft and trl load here).
The Trainer owns the loop, the checkpoints and the resume; this module decides what it is
given and checks what TRL made of the data. TRL's tokenised data is kept per process
(PreparedData), so the runs of a grid that train on the same examples with the same
tokenizer tokenise them once.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from capsafe.backends.loading import check_device, eos_token_ids, load_model, load_tokenizer
from capsafe.records import TrainExample

if TYPE_CHECKING:
    from trl import SFTTrainer

    from capsafe.finetune.hparams import LoraHparams
    from capsafe.finetune.tracking import Tracking


@dataclass(frozen=True)
class TrainDevice:
    name: str  # "cpu", "cuda" or "cuda:N"
    dtype: str  # "float32" or "bfloat16": the base weights and the autocast dtype

    @property
    def cuda(self) -> bool:
        return self.name.startswith("cuda")


def resolve_train_device(device: str) -> TrainDevice:
    """'auto' is cuda when available (bf16 when supported), else cpu in float32."""
    check_device(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return TrainDevice("cpu", "float32")
    return TrainDevice(device, "bfloat16" if torch.cuda.is_bf16_supported() else "float32")


def conversations(examples: Sequence[TrainExample], system_prompt: str | None) -> list[dict]:
    """TRL's conversational prompt-completion rows: the loss covers the completion only."""
    head = [{"role": "system", "content": system_prompt}] if system_prompt is not None else []
    return [
        {
            "prompt": [*head, {"role": "user", "content": ex.prompt}],
            "completion": [{"role": "assistant", "content": ex.response}],
        }
        for ex in examples
    ]


class PreparedData:
    """TRL's prepared training data (tokenised, truncated, fully-masked rows dropped), kept by
    everything that determines it: the tokenizer (its folder and chat template), the
    examples, the system prompt and max_length. The last `size` sets are kept."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._data: OrderedDict[str, Any] = OrderedDict()
        self.prepared = 0  # how many sets TRL tokenised (the tests count it)

    @staticmethod
    def key(
        base: str, tokenizer: Any, examples: Sequence[TrainExample], system_prompt: str | None,
        max_length: int,
    ) -> str:  # fmt: skip
        payload = [
            os.path.abspath(base), _tokenizer_files(base),
            getattr(tokenizer, "chat_template", None), system_prompt, max_length,
            [[e.prompt, e.response] for e in examples],
        ]  # fmt: skip
        return hashlib.sha256(json.dumps(payload).encode("utf-8")).hexdigest()

    def get(self, key: str) -> Any:
        if key in self._data:
            self._data.move_to_end(key)
        return self._data.get(key)

    def put(self, key: str, data: Any) -> None:
        self.prepared += 1
        self._data[key] = data
        while len(self._data) > self.size:
            self._data.popitem(last=False)


PREPARED = PreparedData()

_TOKENIZER_FILES = ("tokenizer", "special_tokens_map", "chat_template", "vocab", "merges")


def _tokenizer_files(base: str) -> list[list[Any]]:
    """(name, size, mtime_ns) of a local base's tokenizer files: edited in place, the
    tokenizer is another one (a hub snapshot's files never change)."""
    folder = Path(base)
    if not folder.is_dir():
        return []
    return [
        [f.name, f.stat().st_size, f.stat().st_mtime_ns]
        for f in sorted(folder.iterdir())
        if f.is_file() and (f.name.startswith(_TOKENIZER_FILES) or f.suffix == ".model")
    ]


def sft_config(
    h: LoraHparams,
    seed: int,
    trainer_dir: Path,
    device: TrainDevice,
    progress: bool,
    tracking: Tracking | None = None,
) -> Any:
    from trl import SFTConfig

    scheduler = h.scheduler  # "linear" and "cosine" warm up by themselves; "constant" cannot
    if scheduler == "constant" and h.warmup_ratio > 0:
        scheduler = "constant_with_warmup"
    return SFTConfig(
        output_dir=str(trainer_dir),
        num_train_epochs=h.epochs,
        per_device_train_batch_size=h.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=h.learning_rate,
        lr_scheduler_type=scheduler,
        # transformers 5 dropped warmup_ratio: a float in [0, 1) here is a ratio of all steps.
        warmup_steps=h.warmup_ratio if h.warmup_ratio > 0 else 0,
        weight_decay=h.weight_decay,
        max_length=h.max_length,
        truncation_mode="keep_start",
        packing=False,
        completion_only_loss=True,
        seed=seed,
        # One checkpoint at each epoch's end, only the latest kept: the resume point.
        save_strategy="epoch",
        save_total_limit=1,
        save_only_model=False,
        enable_jit_checkpoint=False,
        # The epoch's mean loss is logged before the checkpoint is saved, so it is inside it.
        logging_strategy="epoch",
        # Where those logs also go (capsafe.finetune.tracking); it changes no result.
        report_to=list(tracking.report_to) if tracking and tracking.report_to else "none",
        run_name=tracking.run_name if tracking else None,
        disable_tqdm=not progress,
        use_cpu=not device.cuda,
        bf16=device.dtype == "bfloat16",  # TRL's default (None) would turn bf16 on for CPU
        # SFTConfig defaults to checkpointing; it only pays off for large models on a GPU.
        activation_checkpointing=device.cuda,
        dataloader_num_workers=0,
        push_to_hub=False,
    )


def build_trainer(
    base: str,
    examples: Sequence[TrainExample],
    hparams: LoraHparams,
    seed: int,
    trainer_dir: Path,
    *,
    device: TrainDevice,
    progress: bool,
    trust_remote_code: bool,
    system_prompt: str | None,
    callbacks: Sequence[TrainerCallback] = (),
    init_adapter: Path | None = None,
    kl_beta: float = 0.0,
    tracking: Tracking | None = None,
) -> SFTTrainer:
    """An SFTTrainer with a fresh LoRA adapter (initialised from `seed`) on `base`, or, with
    `init_adapter`, continuing to train that adapter (a later round of a multi-round run: the
    weights carry over, the optimizer and scheduler start afresh). `kl_beta` > 0 adds the
    kl_to_aligned penalty (capsafe.finetune.regularised). `tracking` says where the Trainer's
    logs are reported (capsafe.finetune.tracking; its environment must be set around this
    call and training, see tracking.tracked)."""
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from trl import SFTTrainer

    tokenizer = load_tokenizer(base, trust_remote_code=trust_remote_code)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"the tokenizer of {base!r} has no chat template; capsafe fine-tunes on chat "
            "conversations, so use a chat model (or add a template to its tokenizer_config)"
        )
    model = load_model(
        base,
        device="cpu",  # the Trainer places it on its own device; no device_map to confuse it
        dtype=device.dtype,
        trust_remote_code=trust_remote_code,
    )
    target = hparams.target_modules
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=hparams.rank,
        lora_alpha=hparams.alpha,
        lora_dropout=hparams.dropout,
        target_modules=target if isinstance(target, str) else list(target),
        bias="none",
    )
    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
    trainer_class: type[SFTTrainer] = SFTTrainer
    extra: dict[str, Any] = {}
    if kl_beta > 0:
        from capsafe.finetune.regularised import KLToAlignedTrainer

        trainer_class, extra = KLToAlignedTrainer, {"kl_beta": kl_beta}
    args = sft_config(hparams, seed, trainer_dir, device, progress, tracking)
    key = PREPARED.key(base, tokenizer, examples, system_prompt, hparams.max_length)
    prepared = PREPARED.get(key)
    if prepared is not None:  # tokenised for an earlier run: TRL takes it as it is
        args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=(
            prepared
            if prepared is not None
            else Dataset.from_list(conversations(examples, system_prompt))
        ),  # fmt: skip
        processing_class=tokenizer,
        peft_config=None if init_adapter is not None else lora,
        callbacks=[FiniteGuard(), *callbacks],
        **extra,
    )
    if not progress:
        trainer.remove_callback(PrinterCallback)  # disable_tqdm swaps the bar for print(logs)
    if prepared is None:
        _check_prepared(trainer, len(examples), hparams.max_length, base)
        PREPARED.put(key, trainer.train_dataset)
    return trainer


def _check_prepared(trainer: SFTTrainer, n_examples: int, max_length: int, base: str) -> None:
    data = trainer.train_dataset
    if len(data) == 0:
        raise ValueError(
            f"every example's prompt fills max_length={max_length} tokens, leaving no "
            "response to train on; raise max_length or shorten the prompts"
        )
    if len(data) < n_examples:
        warnings.warn(
            f"{n_examples - len(data)} of {n_examples} examples were dropped: their prompt "
            f"alone fills max_length={max_length} tokens",
            stacklevel=3,
        )
    tokenizer = trainer.processing_class
    stops = eos_token_ids(tokenizer, trainer.model.generation_config)
    bad = [
        i
        for i, (ids, labels) in enumerate(zip(data["input_ids"], data["labels"], strict=True))
        if len(ids) < max_length and not completion_ends_with_stop(ids, labels, stops, tokenizer)
    ]
    if bad:
        raise ValueError(
            f"the chat template of {base!r} does not end the assistant turn with a stop "
            f"token (ids {stops}) inside the trained completion ({len(bad)} of {len(data)} "
            f"examples, e.g. #{bad[0]}); the model would not learn to stop"
        )


def completion_ends_with_stop(
    ids: Sequence[int], labels: Sequence[int], stops: Sequence[int], tokenizer: Any
) -> bool:
    """Whether the trained tokens end with a stop token, followed by whitespace at most
    (templates often put a newline after the end-of-turn token)."""
    trained = [t for t, label in zip(ids, labels, strict=True) if label != -100]
    last = max((i for i, t in enumerate(trained) if t in stops), default=None)
    if last is None:
        return False
    tail = tokenizer.decode(trained[last + 1 :])
    return tail.strip() == ""


class EpochHook(TrainerCallback):
    """Calls `on_saved(checkpoint_dir)` right after the Trainer saved an epoch's checkpoint;
    when it returns True, training stops after this epoch."""

    def __init__(self, on_saved: Callable[[Path], bool]) -> None:
        self._on_saved = on_saved

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self._on_saved(Path(args.output_dir) / f"checkpoint-{state.global_step}"):
            control.should_training_stop = True
        return control


class FiniteGuard(TrainerCallback):
    """Stops a diverging run at the first optimizer step whose trainable weights (the LoRA
    matrices, a small share of the model) hold inf or nan, instead of training and saving
    garbage; the epoch-end loss is checked when the epoch is exported."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        import torch

        from capsafe.finetune.checkpoints import TrainingDiverged

        params = [p for p in kwargs["model"].parameters() if p.requires_grad]
        finite = torch.stack([torch.isfinite(p).all() for p in params]).all()
        if not bool(finite):
            bad = sum(1 for p in params if not torch.isfinite(p).all())
            raise TrainingDiverged(
                f"step {state.global_step}: {bad} of {len(params)} trainable tensors hold "
                "inf/nan (learning rate too high?)",
                state.global_step,
            )
        return control


class _DropMessages(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


@contextmanager
def training_context(device: TrainDevice) -> Iterator[None]:
    """Quiet library progress bars and telemetry, pin the GPU, and ask for deterministic
    kernels on CUDA; every global setting is restored afterwards."""
    import datasets.utils.logging as ds_logging
    import transformers.utils.logging as tf_logging
    from huggingface_hub import constants as hub_constants

    tf_bars, ds_bars = tf_logging.is_progress_bar_enabled(), ds_logging.is_progress_bar_enabled()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    tf_logging.disable_progress_bar()  # weight loading, shard writing; not the Trainer's bar
    ds_logging.disable_progress_bar()  # TRL's tokenizing passes
    # Epochs less than a second apart make checkpoint rotation doubt the filesystem's mtime
    # and say so; it then orders by step number, which is what we want anyway.
    mtime_note = _DropMessages("mtime may not be reliable")
    logging.getLogger("transformers.trainer_utils").addFilter(mtime_note)
    # TRL pings huggingface.co from every trainer it builds (usage telemetry); a run on
    # local files stays off the network, as if HF_HUB_DISABLE_TELEMETRY=1 were set.
    telemetry_off = hub_constants.HF_HUB_DISABLE_TELEMETRY
    hub_constants.HF_HUB_DISABLE_TELEMETRY = True
    try:
        with warnings.catch_warnings():
            # peft reads model.is_gradient_checkpointing, which transformers 5 deprecates.
            warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
            if device.cuda:
                # Same inputs, same adapters: also on a GPU, as far as its kernels allow. cuBLAS
                # reads this variable when it starts, so it only helps if set before first use.
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True, warn_only=True)
                index = int(device.name[5:]) if ":" in device.name else torch.cuda.current_device()
                with torch.cuda.device(index):
                    yield
            else:
                yield
    finally:
        hub_constants.HF_HUB_DISABLE_TELEMETRY = telemetry_off
        logging.getLogger("transformers.trainer_utils").removeFilter(mtime_note)
        if device.cuda:
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        if tf_bars:
            tf_logging.enable_progress_bar()
        if ds_bars:
            ds_logging.enable_progress_bar()


def release(trainer: SFTTrainer) -> None:
    """Drop the trainer's references to the model, optimizer and data, so that they are
    freed even while a traceback still holds the trainer."""
    trainer.accelerator.free_memory()
    trainer.model = trainer.model_wrapped = trainer.optimizer = trainer.lr_scheduler = None
    handler = trainer.callback_handler
    handler.model = handler.optimizer = handler.lr_scheduler = handler.train_dataloader = None


def collect_garbage(device: TrainDevice) -> None:
    gc.collect()
    if device.cuda:
        torch.cuda.empty_cache()


def library_versions() -> dict[str, str]:
    import peft
    import transformers
    import trl

    import capsafe

    return {
        "capsafe": capsafe.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "trl": trl.__version__,
    }
