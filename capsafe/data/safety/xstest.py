"""XSTest (Röttger et al., NAACL 2024): exaggerated safety. 250 safe prompts a model should
answer (kind "benign"; refusing them is over-refusal) and 200 unsafe contrast prompts it
should refuse (kind "harmful").

Reads the hub dataset walledai/XSTest (split "test"; columns prompt, type, label, focus,
note; gated: accept its terms and log in), or a local copy of the upstream
`xstest_prompts.csv` (columns id, prompt, type, label, focus, note). Category is `type` (18
types; the unsafe ones start with "contrast_"); meta keeps label, focus and note. Ids are
the file's ids (1..450) for the local CSV; the hub copy has no id column, so its ids are
digests of the prompt, and the two copies' ids differ.

    safety:
      - {name: xstest}                                                     # from the hub
      - {name: xstest, path: shared/datasets/xstest, args: {subset: safe}}  # upstream CSV

VERSION names the upstream commit of the CSV (sha256 11783fb2...); HUB pins the hub
revision read.
"""

from __future__ import annotations

from pathlib import Path

from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.files import DataFileError
from capsafe.data.safety.common import Hub, content_id, meta, one_of, set_rows
from capsafe.records import PromptRecord

VERSION = "xstest-v2@d7bb5bd"
HUB = Hub("walledai/XSTest", revision="f1d713187c61b6ae64e602d74f0b3d812cc2e8e8", gated=True)
KINDS = {"safe": "benign", "unsafe": "harmful"}


@register_prompt_set("xstest")
def xstest(ctx: DataContext, path: Path | None = None, subset: str = "all") -> list[PromptRecord]:
    subset = one_of("xstest", "subset", subset, ("safe", "unsafe", "all"))
    rows = set_rows("xstest", path, ["xstest_prompts.csv"], hub=HUB, split="test")
    records = []
    for row in rows:
        label = row.text("label")
        if label not in KINDS:
            raise DataFileError(f"{row.where}: label {label!r} is neither 'safe' nor 'unsafe'")
        if subset != "all" and label != subset:
            continue
        prompt = row.text("prompt")
        records.append(
            PromptRecord(
                id=row.text("id") if path is not None else content_id(prompt),
                text=prompt,
                source="xstest",
                kind=KINDS[label],
                category=row.text("type"),
                meta=meta(
                    label=label,
                    focus=row.text("focus", required=False),
                    note=row.text("note", required=False),
                ),
            )
        )
    return records
