"""Resolving model references (hub ids, local folders, the built-in organism) to folders.

A local path is used as it is. Anything else is taken as a model-hub id and fetched
into the hub cache with huggingface_hub (weights as safetensors when the repo has them,
plus config and tokenizer files); with HF_HUB_OFFLINE=1 only the cache is read.
"""

from __future__ import annotations

from pathlib import Path

from capsafe.config import BUILTIN_ORGANISM, ModelSpec

# What a model or adapter folder needs; weights fall back to .bin only when a repo has
# no safetensors (see _hub_patterns).
_BASE_PATTERNS = ["*.json", "*.jinja", "*.model", "*.txt", "tokenizer*"]


def _hub_patterns(repo_id: str, revision: str | None) -> list[str]:
    from huggingface_hub import list_repo_files

    files = list_repo_files(repo_id, revision=revision)
    weights = ["*.safetensors"] if any(f.endswith(".safetensors") for f in files) else ["*.bin"]
    return _BASE_PATTERNS + weights


def resolve_folder(ref: str, revision: str | None = None, what: str = "model") -> Path:
    """A local folder for `ref` (local path or hub id); a clear error if neither works."""
    local = Path(ref).expanduser()
    if local.exists():
        if not local.is_dir():
            raise FileNotFoundError(f"{what} {ref!r}: a file, not a folder")
        return local.resolve()
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise FileNotFoundError(f"{what} {ref!r}: no such local folder")
    try:
        from huggingface_hub import snapshot_download

        try:
            patterns = _hub_patterns(ref, revision)
        except Exception:  # offline: the cache decides what is there
            patterns = _BASE_PATTERNS + ["*.safetensors"]
        return Path(snapshot_download(ref, revision=revision, allow_patterns=patterns))
    except Exception as err:
        raise FileNotFoundError(
            f"{what} {ref!r}: not a local folder, and not fetchable from the model hub "
            f"({type(err).__name__}: {err})"
        ) from None


def resolve_model(spec: ModelSpec, organism_dir: Path) -> Path:
    if spec.path == BUILTIN_ORGANISM:
        return organism_dir
    return resolve_folder(spec.path, spec.revision, what=f"base model {spec.name!r}")
