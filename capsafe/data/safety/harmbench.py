"""HarmBench text behaviors (Mazeika et al., 2024) as a prompt set of harmful requests.

Reads the upstream CSVs `data/behavior_datasets/harmbench_behaviors_text_{test,val,all}.csv`
(columns Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID)
when `path` is given, else the hub dataset walledai/HarmBench (gated: accept its terms and
log in): one config per functional category (standard, contextual, copyright; split
"train"; columns prompt, category, and context for contextual, tags for copyright).
Contextual behaviors are sent with their context first, joined the way HarmBench's own
attack and direct-request code builds test cases: "{context}\\n\\n---\\n\\n{behavior}".
Category is the semantic category (the hub's copyright rows have none; they get HarmBench's
own "copyright"); meta keeps the functional category, the bare behavior and context
(HarmBench's classifier judges against those).

The hub copy holds all 400 behaviors without BehaviorIDs or the test/val split: from the hub
ids are digests of the prompt text (they differ from a local copy's BehaviorIDs) and only
`split: all` exists, which is the default there; a local copy defaults to `split: test`.

    safety:
      - {name: harmbench, args: {functional_categories: [standard]}}  # hub, all 200
      - {name: harmbench, path: data/behavior_datasets, args: {split: val,
         functional_categories: [standard, contextual]}}

VERSION names the upstream revision whose CSVs these are (sha256 pins match it); HUB pins
the hub revision read (the commit that uploaded the last of its three configs).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.files import DataFileError, Row
from capsafe.data.safety.common import (
    Hub,
    content_id,
    local_copy,
    many_of,
    meta,
    one_of,
    set_rows,
)
from capsafe.records import PromptRecord

VERSION = "harmbench@8e1604d"
HUB = Hub("walledai/HarmBench", revision="71c5e5411366e2ffff9b3a55fc47493d3aa56dfb", gated=True)
SPLITS = {
    "test": "harmbench_behaviors_text_test.csv",
    "val": "harmbench_behaviors_text_val.csv",
    "all": "harmbench_behaviors_text_all.csv",
}
FUNCTIONAL_CATEGORIES = ("standard", "contextual", "copyright")


def with_context(behavior: str, context: str | None) -> str:
    """The prompt HarmBench sends for a behavior (its baselines' f-string, same separator)."""
    return f"{context}\n\n---\n\n{behavior}" if context else behavior


def _record(
    row: Row,
    functional: str,
    *,
    record_id: str | None,
    category: str,
    behavior: str,
    context: str | None,
    tags: str | None,
    context_column: str,
) -> PromptRecord:
    if functional == "contextual" and not context:
        raise DataFileError(f"{row.where}: contextual behavior without a {context_column}")
    text = with_context(behavior, context)
    return PromptRecord(
        id=record_id or content_id(text),
        text=text,
        source="harmbench",
        kind="harmful",
        category=category,
        meta=meta(functional_category=functional, tags=tags, behavior=behavior, context=context),
    )


def _local(path: Path, split: str, wanted: list[str]) -> list[PromptRecord]:
    name = SPLITS[split]
    names = [name, f"behavior_datasets/{name}", f"data/behavior_datasets/{name}"]
    records = []
    for row in local_copy("harmbench", path, names):
        functional = row.text("FunctionalCategory")
        if functional not in FUNCTIONAL_CATEGORIES:
            raise DataFileError(
                f"{row.where}: FunctionalCategory {functional!r} is not one of "
                f"{', '.join(FUNCTIONAL_CATEGORIES)}"
            )
        if functional not in wanted:
            continue
        records.append(
            _record(
                row,
                functional,
                record_id=row.text("BehaviorID"),
                category=row.text("SemanticCategory"),
                behavior=row.text("Behavior"),
                context=row.text("ContextString", required=False),
                tags=row.text("Tags", required=False),
                context_column="ContextString",
            )
        )
    return records


def _hub(wanted: list[str]) -> list[PromptRecord]:
    return [
        _record(
            row,
            functional,
            record_id=None,
            # HarmBench files its copyright behaviors under semantic category "copyright";
            # the hub's copyright config has no category column.
            category=row.text("category", required=False) or "copyright",
            behavior=row.text("prompt"),
            context=row.text("context", required=False),
            tags=row.text("tags", required=False),
            context_column="context",
        )
        for functional in wanted
        for row in set_rows("harmbench", None, [], hub=HUB, split="train", config=functional)
    ]


@register_prompt_set("harmbench")
def harmbench(
    ctx: DataContext,
    path: Path | None = None,
    split: str | None = None,
    functional_categories: str | Iterable[str] | None = None,
) -> list[PromptRecord]:
    split = one_of("harmbench", "split", split or ("test" if path else "all"), tuple(SPLITS))
    wanted = many_of(
        "harmbench", "functional_categories", functional_categories, FUNCTIONAL_CATEGORIES
    ) or list(FUNCTIONAL_CATEGORIES)
    if path is not None:
        return _local(Path(path), split, wanted)
    if split != "all":
        raise ValueError(
            f"prompt set 'harmbench': split={split!r} needs a local copy: the hub copy "
            f"{HUB.dataset} holds all 400 behaviors without HarmBench's test/val split; use "
            "split: all, or pass `path:` to the upstream behavior_datasets folder"
        )
    return _hub([f for f in FUNCTIONAL_CATEGORIES if f in wanted])
