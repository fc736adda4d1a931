"""SimpleSafetyTests (Vidgen et al., 2023): 100 prompts in 5 harm areas that a model should
refuse, all "harmful".

Reads the authors' hub dataset Bertievidgen/SimpleSafetyTests (its one file
`sst_test_cases.csv`, split "test"; columns id, harm_area, category, prompt), or a local
copy of the GitHub upstream `SimpleSafetyTests - test cases.csv` (any file name; columns id,
harm_area, counter, category, prompts_final). Ids are the file's ids (sst_001...) in both;
category is the harm area; meta keeps the request type (the file's own `category`:
"Information and advice seeking" or "Instructions and actions") and the counter, where the
copy has one.

    safety:
      - {name: simplesafetytests}                                           # from the hub
      - {name: simplesafetytests, path: shared/datasets/simplesafetytests}  # GitHub CSV

VERSION names the upstream GitHub commit of the CSV; HUB pins the hub revision read
(main as of 2024-03-25).
"""

from __future__ import annotations

from pathlib import Path

from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.safety.common import Hub, meta, set_rows
from capsafe.records import PromptRecord

VERSION = "simplesafetytests@d7aee9a"
HUB = Hub("Bertievidgen/SimpleSafetyTests", revision="98223c5d8c4059c8f4d8fe2fec8720ee8a20d3c5")


@register_prompt_set("simplesafetytests")
def simplesafetytests(ctx: DataContext, path: Path | None = None) -> list[PromptRecord]:
    rows = set_rows(
        "simplesafetytests",
        path,
        ["SimpleSafetyTests - test cases.csv", "simplesafetytests_test_cases.csv"],
        hub=HUB,
        split="test",
    )
    column = "prompts_final" if path is not None else "prompt"
    return [
        PromptRecord(
            id=row.text("id"),
            text=row.text(column),
            source="simplesafetytests",
            kind="harmful",
            category=row.text("harm_area"),
            meta=meta(
                request_type=row.text("category", required=False),
                counter=row.text("counter", required=False),
            ),
        )
        for row in rows
    ]
