"""StrongREJECT (Souly et al., 2024): 313 forbidden prompts in 6 categories, all "harmful".

Reads the hub dataset walledai/StrongREJECT (split "train"; columns prompt, category, source;
reported gated: accept its terms and log in), or a local copy of the upstream
`strongreject_dataset/strongreject_dataset.csv` (columns category, source,
forbidden_prompt). Neither has an id column, so ids are digests of the prompt text (stable
under filtering and reordering, and the same from either copy); meta keeps the prompt's
original source (AdvBench, DAN, custom, ...).

    safety:
      - {name: strongreject}                                      # from the hub
      - {name: strongreject, path: shared/datasets/strongreject}  # the upstream CSV

VERSION names the dataset revision of the CSV (313 rows; sha256 4dd70357...); HUB pins the
hub revision read.
"""

from __future__ import annotations

from pathlib import Path

from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.safety.common import Hub, content_id, meta, set_rows
from capsafe.records import PromptRecord

VERSION = "strongreject-313"
HUB = Hub("walledai/StrongREJECT", revision="df54272b395ce9e584d2f8140519935425d8549f", gated=True)


@register_prompt_set("strongreject")
def strongreject(ctx: DataContext, path: Path | None = None) -> list[PromptRecord]:
    rows = set_rows(
        "strongreject",
        path,
        ["strongreject_dataset.csv", "strongreject_dataset/strongreject_dataset.csv"],
        hub=HUB,
        split="train",
    )
    column = "forbidden_prompt" if path is not None else "prompt"
    return [
        PromptRecord(
            id=content_id(text),
            text=text,
            source="strongreject",
            kind="harmful",
            category=row.text("category"),
            meta=meta(origin=row.text("source", required=False)),
        )
        for row in rows
        for text in [row.text(column)]
    ]
