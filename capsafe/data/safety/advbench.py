"""AdvBench harmful behaviors (Zou et al., 2023): 520 harmful instructions, all "harmful".

Reads the hub dataset walledai/AdvBench (split "train"; columns prompt, target; gated: accept
its terms and log in), or a local copy of the upstream `data/advbench/harmful_behaviors.csv`
(columns goal, target). Both hold the same 520 rows, so ids, digests of the instruction
(no copy has an id column), are the same from either; meta keeps the affirmative target
("Sure, here is ..."). AdvBench has no categories, so category is None.

    safety:
      - {name: advbench}                                  # from the hub
      - {name: advbench, path: shared/datasets/advbench}  # the upstream CSV

VERSION names the upstream llm-attacks commit of the CSV; HUB pins the hub revision read
(walledai/AdvBench main as of 2024-07-04).
"""

from __future__ import annotations

from pathlib import Path

from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.safety.common import Hub, content_id, meta, set_rows
from capsafe.records import PromptRecord

VERSION = "advbench@a62d130"
HUB = Hub("walledai/AdvBench", revision="9d4730540082fa4017450b65ca1c0e1d8d30446e", gated=True)


@register_prompt_set("advbench")
def advbench(ctx: DataContext, path: Path | None = None) -> list[PromptRecord]:
    rows = set_rows(
        "advbench",
        path,
        ["harmful_behaviors.csv", "data/advbench/harmful_behaviors.csv"],
        hub=HUB,
        split="train",
    )
    column = "goal" if path is not None else "prompt"
    return [
        PromptRecord(
            id=content_id(goal),
            text=goal,
            source="advbench",
            kind="harmful",
            meta=meta(target=row.text("target", required=False)),
        )
        for row in rows
        for goal in [row.text(column)]
    ]
