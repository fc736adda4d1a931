"""PKU-SafeRLHF (Ji et al., 2024) prompts as a harmful prompt set.

Each row pairs one prompt with two model responses, each labelled safe or not, with 19 harm
categories (true/false) and a severity level (0 safe, 1 minor, 2 moderate, 3 severe). A
prompt recurs across rows and across the three answering models. As in `beavertails`, a
prompt is kept when at least one of its responses was labelled unsafe (the annotators saw it
elicit harm), once, with the union of its unsafe responses' categories and their highest
severity; prompts whose every response was safe are left out, since nothing in the data
says they should be refused. Category is the first flagged category in the dataset card's
order (S1..S19; "unlabelled" if an unsafe response flagged none); meta lists them all
("|"-joined), the severity's name, the split and the config. Ids are digests of the prompt.

Reads the hub dataset PKU-Alignment/PKU-SafeRLHF (configs default, alpaca-7b, alpaca2-7b,
alpaca3-8b; splits train, test; rows {prompt, response_0, response_1, is_response_0_safe,
is_response_1_safe, response_0_harm_category, response_1_harm_category,
response_0_severity_level, response_1_severity_level, ...}), or a local JSONL(.gz)/Parquet
file of those rows, or a folder holding the repository's data/<Model>/<split>.jsonl files.
The defaults are split test and config default (all three models).

    safety:
      - {name: pku_saferlhf, args: {split: test, config: alpaca3-8b}}

HUB pins the revision read (the commit that last changed the data, 2024-09-10).
"""

from __future__ import annotations

from pathlib import Path

from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.files import DataFileError, Row, find_file, read_rows
from capsafe.data.safety.common import Hub, content_id, meta, one_of, set_rows
from capsafe.records import PromptRecord

VERSION = "pku-saferlhf@d79b19b"
HUB = Hub("PKU-Alignment/PKU-SafeRLHF", revision="d79b19b2043c4b168d8d64c61ef4ba4ed1ffe2c0")
CONFIGS = {
    "default": ("Alpaca-7B", "Alpaca2-7B", "Alpaca3-8B"),
    "alpaca-7b": ("Alpaca-7B",),
    "alpaca2-7b": ("Alpaca2-7B",),
    "alpaca3-8b": ("Alpaca3-8B",),
}
CATEGORIES = (
    "Endangering National Security",
    "Insulting Behavior",
    "Discriminatory Behavior",
    "Endangering Public Health",
    "Copyright Issues",
    "Violence",
    "Drugs",
    "Privacy Violation",
    "Economic Crime",
    "Mental Manipulation",
    "Human Trafficking",
    "Physical Harm",
    "Sexual Content",
    "Cybercrime",
    "Disrupting Public Order",
    "Environmental Damage",
    "Psychological Harm",
    "White-Collar Crime",
    "Animal Abuse",
)
SEVERITIES = ("safe", "minor", "moderate", "severe")


def _rows(path: Path | None, config: str, split: str) -> list[Row]:
    if path is None:
        return set_rows("pku_saferlhf", None, [], hub=HUB, split=split, config=config)
    if Path(path).is_file():
        return read_rows(path)
    rows = []  # a folder laid out like the hub repository: the config's files
    for model in CONFIGS[config]:
        names = [f"data/{model}/{split}.jsonl", f"{model}/{split}.jsonl"]
        rows += read_rows(find_file(Path(path), names, "PKU-SafeRLHF data"))
    return rows


def _unsafe_response(row: Row, i: int) -> tuple[set[str], int] | None:
    """The flagged categories and severity of response `i`, or None if it was labelled safe."""
    safe = row.fields.get(f"is_response_{i}_safe")
    if not isinstance(safe, bool):
        raise DataFileError(f"{row.where}: 'is_response_{i}_safe' should be true or false")
    labels = row.get(f"response_{i}_harm_category")
    if not isinstance(labels, dict) or not all(isinstance(v, bool) for v in labels.values()):
        raise DataFileError(
            f"{row.where}: 'response_{i}_harm_category' should map category names to true/false"
        )
    unknown = sorted(set(labels) - set(CATEGORIES))
    if unknown:
        raise DataFileError(f"{row.where}: unknown PKU-SafeRLHF categories {unknown}")
    if safe:
        return None
    severity = row.fields.get(f"response_{i}_severity_level")
    if not isinstance(severity, int) or isinstance(severity, bool) or severity not in range(4):
        raise DataFileError(
            f"{row.where}: 'response_{i}_severity_level' should be 0..3, got {severity!r}"
        )
    return {name for name, on in labels.items() if on}, severity


@register_prompt_set("pku_saferlhf")
def pku_saferlhf(
    ctx: DataContext, path: Path | None = None, split: str = "test", config: str = "default"
) -> list[PromptRecord]:
    split = one_of("pku_saferlhf", "split", split, ("train", "test"))
    config = one_of("pku_saferlhf", "config", config, tuple(CONFIGS))
    flagged: dict[str, tuple[set[str], int]] = {}  # prompt -> (categories, severity), file order
    for row in _rows(path, config, split):
        prompt = row.text("prompt")
        for unsafe in (_unsafe_response(row, 0), _unsafe_response(row, 1)):
            if unsafe is not None:
                categories, severity = flagged.setdefault(prompt, (set(), 0))
                flagged[prompt] = (categories | unsafe[0], max(severity, unsafe[1]))
    return [
        PromptRecord(
            id=content_id(prompt),
            text=prompt,
            source="pku_saferlhf",
            kind="harmful",
            category=ordered[0] if ordered else "unlabelled",
            meta=meta(
                categories="|".join(ordered),
                severity=SEVERITIES[severity] if severity else None,
                split=split,
                config=config,
            ),
        )
        for prompt, (categories, severity) in flagged.items()
        for ordered in [[c for c in CATEGORIES if c in categories]]
    ]
