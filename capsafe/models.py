"""Resolving model references (hub ids, local folders, the built-in organism) to folders.

The pipeline needs a folder to hash a base model's content. A local path is used as it
is; a model-hub id is fetched into the hub cache with huggingface_hub (weights as
safetensors when the repo has them, plus config and tokenizer files); with
HF_HUB_OFFLINE=1 only the cache is read. Classifying a reference and its errors are
capsafe.backends.loading's, shared with the backends and fine-tuning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capsafe.backends.loading import has_safetensors, resolve_source
from capsafe.config import BUILTIN_ORGANISM, ModelSpec

# A judge model: the organism's tiny Llama-Guard-format guard (capsafe.organism.guard).
BUILTIN_GUARD = "builtin:organism-guard"

_BASE_PATTERNS = ["*.json", "*.jinja", "*.model", "*.txt", "tokenizer*"]


def resolve_folder(
    ref: str, revision: str | None = None, what: str = "model", required: str = "config.json"
) -> Path:
    """A local folder for `ref` (local path or hub id) holding `required`; a clear error if
    neither works."""
    source = resolve_source(ref, what=what, revision=revision, required=required)
    if source.local is not None:
        return source.local
    # Pickled weights only when the repo has no safetensors (None: offline, let the cache say).
    weights = ["*.bin"] if has_safetensors(source) is False else ["*.safetensors"]
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(ref, revision=revision, allow_patterns=_BASE_PATTERNS + weights)
    except Exception as err:
        raise FileNotFoundError(
            f"{what} {ref!r}: not a local folder, and not fetchable from the model hub "
            f"({type(err).__name__}: {err})"
        ) from None
    return Path(folder)


def resolve_model(spec: ModelSpec, organism_dir: Path) -> Path:
    if spec.path == BUILTIN_ORGANISM:
        return organism_dir
    return resolve_folder(spec.path, spec.revision, what=f"base model {spec.name!r}")


def guard_pending(args: dict[str, Any], organism_dir: Path) -> bool:
    """Whether the judge args name the organism's guard and it is not built yet (it is built
    when the run starts, after the organism; checking the config must not build it)."""
    from capsafe.organism.guard import MANIFEST

    return (
        args.get("model") == BUILTIN_GUARD
        and not (Path(organism_dir) / "guard" / MANIFEST).is_file()
    )


def resolve_judge_args(args: dict[str, Any], organism_dir: Path) -> dict[str, Any]:
    """A judge's args with `model: builtin:organism-guard` replaced by the guard's folder
    (built beside the organism on first use); other args unchanged."""
    if args.get("model") != BUILTIN_GUARD:
        return dict(args)
    from capsafe.organism.guard import ensure_guard

    return {**args, "model": str(ensure_guard(organism_dir))}


def resolve_unaligned(ref: str, organism_dir: Path, seed: int = 0) -> Path:
    """The folder of an unaligned reference model (SafeLoRA): `builtin:organism-unaligned`
    is the organism's twin built without refusal data (built on first use), anything else
    a local folder or hub id."""
    from capsafe.finetune.recipes import BUILTIN_UNALIGNED

    if ref == BUILTIN_UNALIGNED:
        from capsafe.organism.build import ensure_unaligned

        return ensure_unaligned(organism_dir, seed=seed)
    return resolve_folder(ref, what="unaligned reference model")


def local_model_folder(ref: str, organism_dir: Path) -> Path | None:
    """The folder of a model's files on this machine, without fetching anything: a local
    folder, the organism or its guard once built, or the hub cache's copy; else None."""
    if ref in (BUILTIN_ORGANISM, BUILTIN_GUARD):
        folder = Path(organism_dir) / ("guard" if ref == BUILTIN_GUARD else "")
        return folder if (folder / "config.json").is_file() else None
    local = Path(ref).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(ref, "config.json")
    except Exception:  # not a hub id, or no cache: nothing local
        return None
    return Path(found).parent if isinstance(found, str) else None
