"""Loading models, tokenizers and PEFT adapters the safe way, and the tokenizer facts
every backend and model-based judge needs (how a request becomes tokens, which ids end
a turn).

One place for the rules DESIGN.md sets: safetensors first, trust_remote_code off unless
asked, a local path never touches the network, and an error names the path it could not
use. torch, transformers and peft are imported inside the functions.

    from capsafe.backends.loading import load_model, load_tokenizer, attach_adapter
    model = load_model(".capsafe/organism")             # cpu float32 here, cuda bf16 there
    model = attach_adapter(model, "runs/lora-epoch-1")  # base weights untouched
    model = detach_adapter(model)                       # the very same base again
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capsafe.records import GenerationRequest

if TYPE_CHECKING:
    import torch

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
# "gpt2" or "org/name"; anything else that does not exist locally is a mistyped path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


@dataclass(frozen=True)
class Source:
    """Where a model or an adapter comes from: a local folder or a model-hub repository."""

    ref: str  # as the user gave it
    local: Path | None  # the folder, for a local path; None for a hub id
    revision: str | None = None

    @property
    def load_args(self) -> dict[str, Any]:
        """Keyword arguments for from_pretrained that keep a local folder offline."""
        if self.local is not None:
            return {"local_files_only": True}
        return {"revision": self.revision} if self.revision else {}

    @property
    def path(self) -> str:
        return str(self.local) if self.local is not None else self.ref


def resolve_source(
    ref: str | os.PathLike[str],
    *,
    required: str = "config.json",
    what: str = "model",
    revision: str | None = None,
) -> Source:
    """Classify `ref` as a local folder (which must hold `required`) or a hub id.

    Raises FileNotFoundError naming the path when a local path is missing or incomplete.
    """
    ref = os.fspath(ref)
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FileNotFoundError(f"{what} path {str(path)!r} is a file; expected a folder")
        if not (path / required).is_file():
            present = ", ".join(sorted(p.name for p in path.iterdir())[:12]) or "nothing"
            raise FileNotFoundError(
                f"{what} folder {str(path)!r} has no {required} (it holds: {present}); "
                f"expected a {what} saved with save_pretrained"
            )
        if revision:
            warnings.warn(
                f"revision {revision!r} is ignored for local {what} {str(path)!r}", stacklevel=3
            )
        return Source(ref, path.resolve(), None)
    if not _HUB_ID.match(ref):
        raise FileNotFoundError(f"{what} path {ref!r} does not exist (and is not a hub id)")
    return Source(ref, None, revision)


def _hub_error(source: Source, what: str, err: Exception) -> OSError:
    if source.local is not None:
        return OSError(f"could not load the {what} from {source.path!r}: {err}")
    return OSError(
        f"could not load the {what} of {source.ref!r}: there is no local folder of that name "
        f"(in {Path.cwd()}), and the model hub failed: {err}"
    )


def has_safetensors(source: Source) -> bool | None:
    """Whether the folder or hub repo holds *.safetensors weights; None if we cannot tell."""
    if source.local is not None:
        return any(source.local.glob("*.safetensors"))
    try:
        from huggingface_hub import list_repo_files

        files = list_repo_files(source.ref, revision=source.revision)
    except Exception:  # offline, private or rate-limited: let transformers decide
        return None
    return any(f.endswith(".safetensors") for f in files)


def safetensors_flag(source: Source, what: str) -> bool | None:
    """use_safetensors for from_pretrained: True when there are safetensors weights, False
    (with a warning) when there are only pickled ones, None when we cannot tell."""
    found = has_safetensors(source)
    if found is False:
        warnings.warn(
            f"{what} {source.ref!r} has no safetensors weights; loading pickled weights "
            "(torch.load). Only do this for files you trust.",
            stacklevel=3,
        )
    return found


def resolve_device(device: str = "auto") -> str:
    """'auto' means cuda when available, else cpu; any torch device string passes through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_device(device: str) -> None:
    """Refuse, before anything loads, a device capsafe cannot use: not 'auto', 'cpu', 'cuda'
    or 'cuda:N', or a CUDA device on a machine that has none."""
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but no CUDA GPU is visible here")


def check_whole(field: str, value: Any, minimum: int = 1) -> None:
    """Refuse a count that is not a whole number >= minimum (True is no count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field} must be a whole number >= {minimum}, got {value!r}")


def dtype_name(dtype: str, device: str) -> str:
    """The canonical dtype name: 'auto' means bfloat16 on CUDA and float32 elsewhere."""
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected 'auto' or one of {sorted(_DTYPES)}")
    return _DTYPES[dtype]


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """The torch dtype for `dtype_name(dtype, device)`."""
    import torch

    return getattr(torch, dtype_name(dtype, device))


def load_tokenizer(ref: str, *, trust_remote_code: bool = False, revision: str | None = None):
    """The model's tokenizer, from the same folder or hub repo as the model."""
    from transformers import AutoTokenizer

    source = resolve_source(ref, revision=revision)
    try:
        return AutoTokenizer.from_pretrained(
            source.path, trust_remote_code=trust_remote_code, **source.load_args
        )
    except OSError as err:
        raise _hub_error(source, "tokenizer", err) from err


def load_model(
    ref: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    auto_class: Any = None,
    **kwargs: Any,
):
    """A model in eval mode on `device`; `auto_class` defaults to AutoModelForCausalLM.

    Extra keyword arguments (e.g. attn_implementation) go to from_pretrained.
    """
    from transformers import AutoModelForCausalLM

    auto_class = auto_class or AutoModelForCausalLM
    source = resolve_source(ref, revision=revision)
    device = resolve_device(device)
    try:
        model = auto_class.from_pretrained(
            source.path,
            dtype=resolve_dtype(dtype, device),
            device_map=device,
            use_safetensors=safetensors_flag(source, "model"),
            trust_remote_code=trust_remote_code,
            **source.load_args,
            **kwargs,
        )
    except OSError as err:
        raise _hub_error(source, "model", err) from err
    return model.eval()


def attach_adapter(model: Any, ref: str | os.PathLike[str], *, revision: str | None = None):
    """`model` with the PEFT adapter at `ref` attached (unmerged: base weights untouched).

    If `model` already carries an adapter, that one is detached first.
    """
    from peft import PeftModel

    source = resolve_source(ref, required="adapter_config.json", what="adapter", revision=revision)
    if source.local is not None:
        safetensors_flag(source, "adapter")  # peft prefers safetensors itself; we only warn
    base = detach_adapter(model)
    try:
        with warnings.catch_warnings():  # peft calls a deprecated transformers helper
            warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
            adapted = PeftModel.from_pretrained(
                base, source.path, is_trainable=False, **source.load_args
            )
    except (OSError, ValueError) as err:
        raise _hub_error(source, "adapter", err) from err
    return adapted.eval()


def detach_adapter(model: Any):
    """The base model without any adapter; returns `model` itself if it has none."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        # unload() swaps each LoRA layer back for the original module, without merging.
        return model.unload()
    return model


# --- tokenizer facts shared by the backends -------------------------------------------


def render_prompt(tokenizer: Any, request: GenerationRequest, model_name: str = "model") -> str:
    """The prompt text for `request`: the chat template with the assistant turn opened,
    or the message contents joined by blank lines."""
    if not request.use_chat_template:
        return "\n\n".join(m.content for m in request.messages)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"the tokenizer of {model_name} has no chat template; use a format with "
            "use_chat_template: false, or a model that ships one"
        )
    return tokenizer.apply_chat_template(
        chat_messages(request), tokenize=False, add_generation_prompt=True
    )


def chat_messages(request: GenerationRequest) -> list[dict[str, Any]]:
    """The request's messages as a chat template (or a chat API) takes them: plain string
    contents, or typed text parts when the request asks for content_parts."""
    if request.content_parts:
        return [
            {"role": m.role, "content": [{"type": "text", "text": m.content}]}
            for m in request.messages
        ]
    return [{"role": m.role, "content": m.content} for m in request.messages]


def encode_request(
    tokenizer: Any, request: GenerationRequest, model_name: str = "model"
) -> list[int]:
    """Token ids of the prompt. A rendered chat template already holds its special tokens
    (BOS included), so only raw text gets the tokenizer's own."""
    text = render_prompt(tokenizer, request, model_name)
    ids = tokenizer(text, add_special_tokens=not request.use_chat_template)["input_ids"]
    return list(ids)


def eos_token_ids(tokenizer: Any, generation_config: Any = None) -> list[int]:
    """The ids that end a response: the tokenizer's eos and generation_config's (int or list)."""
    ids: list[int] = []
    candidates: Sequence[Any] = [getattr(tokenizer, "eos_token_id", None)]
    gen_eos = getattr(generation_config, "eos_token_id", None)
    candidates = [*candidates, *(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])]
    for i in candidates:
        if i is not None and int(i) not in ids:
            ids.append(int(i))
    if not ids:
        raise ValueError("the tokenizer and generation config define no eos token")
    return ids
