"""IFEval (Zhou et al. 2023): 541 prompts with verifiable instructions ("no commas",
"at least 300 words", "end with 'Any other questions?'"), checked by code.

Rows: {"key", "prompt", "instruction_id_list", "kwargs"} (one kwargs dict per id), from hub
google/IFEval or `path` (input_data.jsonl or a folder holding it). A record's reference is
the JSON of its instruction ids and kwargs, so scoring needs nothing but the record.

score: correct = every instruction followed; value = the fraction followed; extracted = a
short JSON {instruction id: followed}. Strict by default; loose=True also accepts a
response whose first and/or last line is dropped or whose "*" are removed (the paper's
loose accuracy).

IFEval has no train split. train_examples() raises unless a train source is given: the
option train_path, any Alpaca-style JSON/JSONL (see capsafe.data.tasks.alpaca).

    task: {name: ifeval, path: data/ifeval, args: {train_path: data/alpaca_data.json}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capsafe.data.base import DataContext, Scoring, register_task
from capsafe.data.files import DataFileError, Row
from capsafe.data.tasks.alpaca import alpaca_examples
from capsafe.data.tasks.ifeval_checks import run_check, validate
from capsafe.data.tasks.splits import Split, split_rows
from capsafe.records import PromptRecord, Score, TrainExample

NAME = "ifeval"
TEST = Split("google/IFEval", "train", ("input_data.jsonl", "ifeval_input_data.jsonl"))


def parse_row(row: Row) -> tuple[str, str, list[str], list[dict[str, Any]]]:
    """(key, prompt, instruction ids, kwargs per id) of one row, validated against the
    checks; kwargs set to null (the hub's padding) are dropped."""
    ids, kwargs = row.get("instruction_id_list"), row.get("kwargs", required=False) or []
    if not isinstance(ids, list) or not ids:
        raise DataFileError(f"{row.where}: instruction_id_list should be a non-empty list")
    if not isinstance(kwargs, list) or len(kwargs) != len(ids):
        raise DataFileError(f"{row.where}: kwargs should be a list with one dict per instruction")
    clean = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in kwargs]
    for instruction, kw in zip(ids, clean, strict=True):
        try:
            validate(instruction, kw)
        except (KeyError, TypeError) as err:
            raise DataFileError(f"{row.where}: {err}") from None
    return str(row.get("key")), str(row.get("prompt")), ids, clean


def loose_variants(response: str) -> list[str]:
    """The response, without its first line, last line or both, each also without "*"."""
    lines = response.split("\n")
    cut = [response, "\n".join(lines[1:]), "\n".join(lines[:-1]), "\n".join(lines[1:-1])]
    return [v for text in cut for v in (text.strip(), text.replace("*", "").strip()) if v]


class IFEval:
    name = NAME
    version = "2"  # 2: list markers before lower case end no sentence (as Punkt)
    scoring: Scoring = "generate"

    def __init__(
        self, path: Path | None, test_path: Path | None, train_path: Path | None, loose: bool
    ) -> None:
        self._path, self._test_path, self._train_path = path, test_path, train_path
        self.loose = loose
        if loose:
            self.version += "-loose"

    def train_examples(self) -> list[TrainExample]:
        if self._train_path is None:
            raise ValueError(
                "ifeval has no train split: give a train source with the task option "
                "train_path (an Alpaca-style instruction/input/output JSON or JSONL file)"
            )
        return alpaca_examples(self._train_path)

    def test_prompts(self) -> list[PromptRecord]:
        records = []
        for row in split_rows("test", TEST, self._path, self._test_path):
            key, prompt, ids, kwargs = parse_row(row)
            spec = json.dumps({"instruction_id_list": ids, "kwargs": kwargs}, sort_keys=True)
            records.append(PromptRecord(f"ifeval-{key}", prompt, NAME, "task", None, spec))
        return records

    def score(self, response: str, record: PromptRecord) -> Score:
        try:
            spec = json.loads(record.reference or "")
            pairs = list(zip(spec["instruction_id_list"], spec["kwargs"], strict=True))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"record {record.id!r}: reference is not an IFEval spec ({err})"
            ) from None
        variants = loose_variants(response) if self.loose else [response]
        followed = [any(run_check(i, v, kw) for v in variants) for i, kw in pairs]
        # 17 prompts repeat an instruction id with other kwargs; "#2" keeps both results.
        labels: dict[str, bool] = {}
        for (instruction, _), ok in zip(pairs, followed, strict=True):
            n = sum(1 for k in labels if k.split("#")[0] == instruction)
            labels[instruction if n == 0 else f"{instruction}#{n + 1}"] = ok
        value = sum(followed) / len(followed)
        return Score(correct=all(followed), extracted=json.dumps(labels), value=value)


@register_task(NAME)
def ifeval(
    ctx: DataContext,
    path: Path | None = None,
    *,
    test_path: Path | None = None,
    train_path: Path | None = None,
    loose: bool = False,
) -> IFEval:
    return IFEval(path, test_path, train_path, loose)
