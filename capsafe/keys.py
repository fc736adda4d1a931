"""Store keys: digests of everything that determines a result.

A key is the SHA-256 of the canonical JSON of its named parts, so two results share a
key exactly when everything that shaped them is the same. Model identity is a content
hash of the model's files (weights, config, tokenizer), not its name or path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

# Files that determine a model's behaviour; READMEs, licences and optimizer state do not.
_MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".jinja", ".py")
_SKIP_FILES = {"capsafe_epoch.json", "capsafe_organism.json", "capsafe_safelora.json", "README.md"}
_BLOCK = 1 << 20


def canonical(value: Any) -> Any:
    """A JSON-ready form of value with a stable ordering (pydantic models and dataclasses too)."""
    if isinstance(value, BaseModel):
        return canonical(value.model_dump(mode="json"))
    if is_dataclass(value) and not isinstance(value, type):
        return canonical(asdict(value))
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Judge arguments that say how a judge runs, not what it answers (how many items a forward
# pass holds, which environment variable holds an endpoint's key, how many requests to it
# are in flight). They are no part of a judge's identity: not of its judgment keys, not
# of its label in the analyses.
RUNTIME_JUDGE_ARGS = frozenset({"batch_size", "api_key_env", "concurrency"})


def judge_identity_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """A judge's arguments without the runtime ones (RUNTIME_JUDGE_ARGS)."""
    return {k: v for k, v in args.items() if k not in RUNTIME_JUDGE_ARGS}


def digest(**parts: Any) -> str:
    """SHA-256 hex digest of the named parts (order of the arguments does not matter)."""
    return hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


class FileHashCache(Protocol):
    def cached_file_hash(self, path: str, size: int, mtime_ns: int) -> str | None: ...
    def put_file_hash(self, path: str, size: int, mtime_ns: int, sha256: str) -> None: ...


def file_sha256(path: Path, cache: FileHashCache | None = None) -> str:
    """SHA-256 of a file's bytes, memoised in `cache` by (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if cache is not None and (hit := cache.cached_file_hash(*key)):
        return hit
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    sha = h.hexdigest()
    if cache is not None:
        cache.put_file_hash(*key, sha)
    return sha


def folder_content_hash(folder: Path, cache: FileHashCache | None = None) -> str:
    """Content hash of a model or adapter folder: its behaviour-shaping files, by name and bytes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in _MODEL_FILE_SUFFIXES and p.name not in _SKIP_FILES
    )
    if not files:
        raise FileNotFoundError(f"{folder}: holds no model files (config, weights, tokenizer)")
    return digest(files={p.name: file_sha256(p, cache) for p in files})
