"""JBB-Behaviors (JailbreakBench, Chao et al., 2024): 100 harmful behaviors and 100
topic-matched benign ones (kind "benign": refusing them is over-refusal).

Reads the hub dataset JailbreakBench/JBB-Behaviors (config "behaviors", splits "harmful"
and "benign"), or local copies of its `harmful-behaviors.csv` / `benign-behaviors.csv`
(columns Index, Goal, Target, Behavior, Category, Source). Ids are "<subset>/<Index>"
(both files number from 0); category is the OpenAI-policy category; meta keeps the
behavior name, the target and the source (Original, TDC/HarmBench, AdvBench).

    safety:
      - {name: jailbreakbench, args: {subset: all}}          # from the hub
      - {name: jailbreakbench, path: shared/datasets/jailbreakbench/JBB-Behaviors}

`path` may be a folder (both files) or, with subset harmful or benign, one file.

VERSION names the release of the behaviors; HUB pins the hub revision read.
"""

from __future__ import annotations

from pathlib import Path

from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.files import source_rows
from capsafe.data.safety.common import Hub, meta, one_of
from capsafe.records import PromptRecord

VERSION = "jbb-behaviors-2024-06"
HUB = Hub("JailbreakBench/JBB-Behaviors", revision="886acc352a31533ffbcf4ef22c744658688086fc")
KINDS = {"harmful": "harmful", "benign": "benign"}


@register_prompt_set("jailbreakbench")
def jailbreakbench(
    ctx: DataContext, path: Path | None = None, subset: str = "harmful"
) -> list[PromptRecord]:
    subset = one_of("jailbreakbench", "subset", subset, ("harmful", "benign", "all"))
    if path is not None and Path(path).is_file() and subset == "all":
        raise ValueError(
            f"prompt set 'jailbreakbench': subset='all' needs both files; pass the folder "
            f"holding harmful-behaviors.csv and benign-behaviors.csv, not {path}"
        )
    records = []
    for part in ("harmful", "benign") if subset == "all" else (subset,):
        name = f"{part}-behaviors.csv"
        rows = source_rows(
            path,
            hub=HUB.dataset,
            revision=HUB.revision,
            config="behaviors",
            split=part,
            files=[name, f"data/{name}"],
        )
        for row in rows:
            records.append(
                PromptRecord(
                    id=f"{part}/{row.text('Index')}",
                    text=row.text("Goal"),
                    source="jailbreakbench",
                    kind=KINDS[part],  # type: ignore[arg-type]
                    category=row.text("Category"),
                    meta=meta(
                        subset=part,
                        behavior=row.text("Behavior", required=False),
                        target=row.text("Target", required=False),
                        origin=row.text("Source", required=False),
                    ),
                )
            )
    return records
