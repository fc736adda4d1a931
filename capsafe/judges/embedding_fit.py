"""Logistic regressions on all-MiniLM-L6-v2 embeddings, fitted once and kept under the
sha256 of what determined them: the two embedding judges (embedding_refusal and
embedding_harm) are each one of these.

A fitted classifier is JSON (no pickle: a weights file is data, never code) holding its
classes, coefficients and `training_sha256`, the digest of the training texts and labels,
the embedding model and the recipe (window, C). The digest is part of the judge's version,
so judgments made with other weights get other store keys. Weights are read from a file
shipped with capsafe, or fitted from training data and cached in cache_dir (default
~/.cache/capsafe/), written to a temporary name first so a crash leaves no half file.

    recipe = Recipe("embedding_harm", version="1", head_chars=None, c=1.0)
    clf = load_or_fit(examples, recipe, Path("~/.cache/capsafe"))
    clf.probabilities(["Sure, here is how..."])    # (1, n_classes), columns in clf.classes
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from capsafe.judges.embeddings import EMBEDDING_MODEL, embed

DEFAULT_CACHE = Path("~/.cache/capsafe")
SHIPPED = Path(__file__).resolve().parent / "weights"


class Example(NamedTuple):
    text: str
    label: str
    group: str = ""  # what cross-validation holds out together (a source, a question)


@dataclass(frozen=True)
class Recipe:
    """How a classifier is fitted. Bump `version` when anything here changes meaning."""

    name: str  # the judge's name: the cache file's prefix
    version: str
    head_chars: int | None  # embed only the response's first characters; None: all of it
    c: float = 1.0  # inverse L2 strength of the logistic regression


def texts_for(responses: Sequence[str], head_chars: int | None) -> list[str]:
    """What is embedded for each response: its stripped text, cut to head_chars."""
    return [r.strip()[:head_chars] if head_chars else r.strip() for r in responses]


def features(responses: Sequence[str], head_chars: int | None) -> Any:
    """Unit-norm embeddings (len(responses), 384) of what texts_for keeps."""
    return embed(texts_for(responses, head_chars))


def training_digest(examples: Sequence[Example], recipe: Recipe) -> str:
    """sha256 of the training texts and labels, the embedding model and the recipe."""
    blob = json.dumps(
        {
            "examples": [[e.text, e.label] for e in examples],
            "embedding_model": EMBEDDING_MODEL,
            "recipe": [recipe.name, recipe.version, recipe.head_chars, recipe.c],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LinearClassifier:
    """A fitted multinomial (or binary) logistic regression over embedding features."""

    def __init__(self, weights: dict[str, Any]) -> None:
        import numpy as np

        self.classes = [str(k) for k in weights["classes"]]
        self.coef = np.asarray(weights["coef"], dtype=np.float64)
        self.intercept = np.asarray(weights["intercept"], dtype=np.float64)
        self.digest = str(weights["training_sha256"])
        self.head_chars = weights.get("head_chars")
        self.record = weights

    def probabilities_of(self, x: Any) -> Any:
        """(n, len(classes)) class probabilities of feature rows x."""
        import numpy as np

        logits = x.astype(np.float64) @ self.coef.T + self.intercept
        if len(self.classes) == 2 and logits.shape[1] == 1:  # sklearn's binary form
            logits = np.hstack([np.zeros_like(logits), logits])
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def probabilities(self, responses: Sequence[str]) -> Any:
        return self.probabilities_of(features(responses, self.head_chars))


def fit(x: Any, labels: Sequence[str], c: float) -> dict[str, Any]:
    """Logistic regression weights (classes balanced) as a JSON-ready dict."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit(x, list(labels))
    return {
        "classes": [str(k) for k in model.classes_],
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
    }


def fit_examples(examples: Sequence[Example], recipe: Recipe, x: Any = None) -> LinearClassifier:
    """A classifier fitted on the examples (x: their features, if already embedded)."""
    if x is None:
        x = features([e.text for e in examples], recipe.head_chars)
    weights = fit(x, [e.label for e in examples], recipe.c)
    record = {
        "training_sha256": training_digest(examples, recipe),
        "embedding_model": EMBEDDING_MODEL,
        "recipe_version": recipe.version,
        "head_chars": recipe.head_chars,
        "C": recipe.c,
        "n_examples": len(examples),
        **weights,
    }
    return LinearClassifier(record)


def write(clf: LinearClassifier, path: Path, notice: str | None = None) -> Path:
    """Save the classifier as JSON at path (atomically); notice: a licence line to keep."""
    record = {**clf.record, **({"notice": notice} if notice else {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return path


def read(path: Path, expected_digest: str | None = None) -> LinearClassifier | None:
    """The classifier saved at path; None if absent or fitted on other data."""
    if not path.is_file():
        return None
    clf = LinearClassifier(json.loads(path.read_text(encoding="utf-8")))
    if expected_digest is not None and clf.digest != expected_digest:
        return None
    return clf


class FitOnUse:
    """The classifier for these examples, read from cache_dir or fitted there on first use.

    Building it checks the examples and the recipe and knows the digest (the judge's
    version) without embedding anything, so a judge that needs a fit is built at plan
    time for nothing and a bad C or an unusable training file fails before any work."""

    def __init__(
        self, examples: Sequence[Example], recipe: Recipe, cache_dir: Path | None = None
    ) -> None:
        c = recipe.c
        if isinstance(c, bool) or not (isinstance(c, (int, float)) and 0 < c < float("inf")):
            raise ValueError(f"C must be a positive number, got {recipe.c!r}")
        self.classes = sorted({e.label for e in examples})  # sklearn's classes_ order
        if len(self.classes) < 2:
            raise ValueError(
                f"{recipe.name}: the training examples hold {len(examples)} row(s) and "
                f"{len(self.classes)} label(s); a classifier needs at least two labels"
            )
        self.examples, self.recipe, self.cache_dir = examples, recipe, cache_dir
        self.digest = training_digest(examples, recipe)
        self._fitted: LinearClassifier | None = None

    def fitted(self) -> LinearClassifier:
        if self._fitted is None:
            self._fitted = load_or_fit(self.examples, self.recipe, self.cache_dir)
        return self._fitted

    def probabilities(self, responses: Sequence[str]) -> Any:
        return self.fitted().probabilities(responses)


def load_or_fit(
    examples: Sequence[Example], recipe: Recipe, cache_dir: Path | None = None
) -> LinearClassifier:
    """The classifier for these examples: from cache_dir if fitted before, else fitted and
    saved there."""
    digest = training_digest(examples, recipe)
    path = (cache_dir or DEFAULT_CACHE).expanduser() / f"{recipe.name}-{digest[:16]}.json"
    cached = read(path, digest)
    if cached is not None:
        return cached
    clf = fit_examples(examples, recipe)
    write(clf, path)
    return clf
