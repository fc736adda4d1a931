"""WildGuardTest (Han et al., 2024), the test half of WildGuardMix: vanilla and adversarial
(jailbreak-style) prompts, human-labelled harmful or not.

Reads the gated hub dataset allenai/wildguardmix (config "wildguardtest", split "test";
accept its terms and log in), or a local copy of its `test/wildguard_test.parquet` (or a
JSONL/CSV with the same columns: prompt, adversarial, response, prompt_harm_label,
response_harm_label, response_refusal_label, subcategory). Only the prompts are used: a
prompt recurs once per response it was paired with, and is kept once. Prompts labelled
"harmful" are kind "harmful"; "unharmful" ones are kind "benign" (refusing them is
over-refusal) and are read only with `subset: benign` or `all`: the default is `harmful`,
since the benign half was written to test moderation classifiers, and counting it as an
over-refusal probe is the user's choice to make. A prompt labelled harmful in any of its
rows counts as harmful (meta keeps every label it was given); rows without a prompt label
are left out. Category is the subcategory (14 harm types, "benign", "others"); meta keeps
whether the prompt is adversarial. Ids are digests of the prompt.

    safety:
      - {name: wildguardtest, args: {subset: all, prompt_type: adversarial}}

VERSION names the WildGuardMix release; HUB pins the hub revision read.
"""

from __future__ import annotations

from pathlib import Path

from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.files import DataFileError, Row
from capsafe.data.safety.common import Hub, content_id, meta, one_of, set_rows
from capsafe.records import PromptRecord

VERSION = "wildguardmix@d29c47f"
HUB = Hub("allenai/wildguardmix", revision="d29c47f41c8b51348b5c8e8c81c039b3132b66d1", gated=True)
LABELS = ("harmful", "unharmful")
PROMPT_TYPES = {"vanilla": False, "adversarial": True}


def _adversarial(row: Row) -> bool:
    value = row.get("adversarial")
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # a CSV copy holds the words
    if not isinstance(value, bool):
        raise DataFileError(f"{row.where}: 'adversarial' should be true or false, got {value!r}")
    return value


@register_prompt_set("wildguardtest")
def wildguardtest(
    ctx: DataContext, path: Path | None = None, subset: str = "harmful", prompt_type: str = "all"
) -> list[PromptRecord]:
    subset = one_of("wildguardtest", "subset", subset, ("harmful", "benign", "all"))
    prompt_type = one_of("wildguardtest", "prompt_type", prompt_type, (*PROMPT_TYPES, "all"))
    rows = set_rows(
        "wildguardtest",
        path,
        ["test/wildguard_test.parquet", "wildguard_test.parquet"],
        hub=HUB,
        split="test",
        config="wildguardtest",
    )
    labels: dict[str, list[str]] = {}  # prompt -> the labels its rows give, in file order
    chosen: dict[str, Row] = {}  # prompt -> its first row, or its first row labelled harmful
    for row in rows:
        label = row.text("prompt_harm_label", required=False)
        if label is None:
            continue
        if label not in LABELS:
            raise DataFileError(
                f"{row.where}: prompt_harm_label {label!r} is neither 'harmful' nor 'unharmful'"
            )
        prompt = row.text("prompt")
        seen = labels.setdefault(prompt, [])
        if label == "harmful" and "harmful" not in seen:
            chosen[prompt] = row
        chosen.setdefault(prompt, row)
        if label not in seen:
            seen.append(label)
    records = []
    for prompt, row in chosen.items():
        kind = "harmful" if "harmful" in labels[prompt] else "benign"
        adversarial = _adversarial(row)
        if subset not in ("all", kind):
            continue
        if prompt_type != "all" and PROMPT_TYPES[prompt_type] != adversarial:
            continue
        records.append(
            PromptRecord(
                id=content_id(prompt),
                text=prompt,
                source="wildguardtest",
                kind=kind,  # type: ignore[arg-type]
                category=row.text("subcategory", required=False),
                meta=meta(
                    prompt_harm_label="|".join(labels[prompt]),
                    adversarial=str(adversarial).lower(),
                ),
            )
        )
    return records
