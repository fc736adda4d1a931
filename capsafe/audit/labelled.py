"""Human-labelled (prompt, response) files that judges are audited against.

A labelled set holds items with one or more human labels each, on one dimension:
"harmful" (labels "1"/"0": a harmful instance of the behaviour or not) or "refusal"
(labels "full" / "partial" / "none"). The gold label is the annotators' majority (ties
go to the file's adjudicated label when it has one, else the item has no gold label: it
stays in the set, so the annotators' agreement is measured on every item, and judges are
scored on the others). Any CSV/JSON/JSONL file works with a column mapping; two presets
read the human-labelled sets the field uses in their upstream formats.

    labelled = load_preset("xstest", Path("../shared/datasets/xstest"))
    labelled = load_labelled(Path("mine.csv"), dimension="refusal",
                             columns={"prompt": "q", "response": "a", "labels": ["r1", "r2"]})
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from capsafe.analysis.agreement import majority
from capsafe.data.files import DataFileError, Row, read_rows, read_text
from capsafe.errors import UserError

Dimension = Literal["harmful", "refusal"]
LABELS: dict[str, tuple[str, ...]] = {"harmful": ("1", "0"), "refusal": ("full", "partial", "none")}


@dataclass(frozen=True)
class LabelledItem:
    id: str
    prompt: str
    response: str
    labels: tuple[str, ...]  # one per annotator, in LABELS[dimension]
    gold: str | None  # the majority (or adjudicated) label; None: annotators tie
    category: str | None = None
    source: str = ""  # which file or subset (e.g. the model that wrote the response)
    finish_reason: str | None = None  # "length" (cut at the token limit), "eos", None: unknown


@dataclass(frozen=True)
class LabelledSet:
    name: str
    dimension: Dimension
    items: list[LabelledItem]  # every item read, with or without a gold label
    # The responses were generated under a token limit, so one that stops mid-sentence
    # (and has no finish reason of its own) was cut by it: truncated, not incoherent.
    token_limit: bool = False

    @property
    def dropped(self) -> int:
        """Items without a gold label (annotator ties, no adjudication): not scored."""
        return sum(i.gold is None for i in self.items)

    def head(self, n: int) -> LabelledSet:
        """The first n items (for a quick audit), everything else as it was."""
        return replace(self, items=self.items[:n])

    def finish_reasons(self) -> list[str | None]:
        """Each item's finish reason as a judge should see it: its own, else "length" for
        a response that stops mid-sentence in a set collected under a token limit."""
        from capsafe.judges.coherence_signals import ends_mid_sentence

        return [
            i.finish_reason
            or ("length" if self.token_limit and ends_mid_sentence(i.response) else None)
            for i in self.items
        ]


def gold_label(labels: Sequence[str], adjudicated: str | None = None) -> str | None:
    """The annotators' majority; on a tie the adjudicated label, else None."""
    found = majority(labels)
    return adjudicated if found is None else str(found)


def _normalise(value: object, dimension: Dimension, mapping: Mapping[str, str], where: str) -> str:
    text = str(value).strip()
    label = mapping.get(text, text)
    if label not in LABELS[dimension]:
        raise DataFileError(
            f"{where}: label {text!r} is not one of {LABELS[dimension]} for dimension "
            f"{dimension!r} (map it with label_map)"
        )
    return label


def load_labelled(
    path: Path,
    *,
    dimension: Dimension,
    columns: Mapping[str, str | Sequence[str]],
    label_map: Mapping[str, str] | None = None,
    name: str | None = None,
    token_limit: bool = False,
) -> LabelledSet:
    """A labelled set from any data file. columns: prompt, response, labels (a column or a
    list of annotator columns), optional id, category, adjudicated, finish_reason ("length"
    or "eos"; OpenAI's "stop" reads as "eos"). token_limit: the responses were generated
    under a token limit (see LabelledSet.token_limit)."""
    for needed in ("prompt", "response", "labels"):
        if needed not in columns:
            raise UserError(f"labelled file {path}: the column mapping needs {needed!r}")
    label_cols = columns["labels"]
    label_cols = [label_cols] if isinstance(label_cols, str) else list(label_cols)
    rows = read_rows(path)
    if not rows:  # an audit of nothing would pass as an audit
        raise DataFileError(f"{path}: no labelled rows (a header only?)")
    labelled = _from_rows(
        name or Path(path).stem,
        dimension,
        rows,
        lambda r: _row_fields(r, columns, label_cols),
        label_map or {},
    )
    finish = columns.get("finish_reason")
    if finish:
        items = [
            replace(item, finish_reason=_finish_reason(row, str(finish)))
            for item, row in zip(labelled.items, rows, strict=True)
        ]
        labelled = replace(labelled, items=items)
    return replace(labelled, token_limit=token_limit)


FINISH_REASONS = {"length": "length", "eos": "eos", "stop": "eos"}


def _finish_reason(row: Row, column: str) -> str | None:
    value = row.text(column, required=False)
    if not value:
        return None
    if value not in FINISH_REASONS:
        raise DataFileError(
            f"{row.where}: finish reason {value!r} is not one of {sorted(FINISH_REASONS)}"
        )
    return FINISH_REASONS[value]


def _row_fields(
    row: Row, columns: Mapping[str, str | Sequence[str]], label_cols: Sequence[str]
) -> tuple[str, str, str, list[object], str | None, str | None]:
    def col(key: str, required: bool = True) -> str | None:
        c = columns.get(key)
        return row.text(str(c), required=required) if c else None

    labels = [row.get(c) for c in label_cols]
    ident = col("id", required=False) or row.where.rsplit(":", 1)[-1].strip()
    return (
        ident,
        col("prompt") or "",
        row.text(str(columns["response"]), required=False) or "",
        labels,
        col("category", required=False),
        col("adjudicated", required=False),
    )


def _from_rows(
    name: str,
    dimension: Dimension,
    rows: Sequence[Row],
    fields: Callable[[Row], tuple[str, str, str, list[object], str | None, str | None]],
    label_map: Mapping[str, str],
    source: str = "",
) -> LabelledSet:
    items = []
    first: dict[str, str] = {}
    for row in rows:
        ident, prompt, response, raw_labels, category, adjudicated = fields(row)
        if ident in first:  # agreement would count one item twice
            raise DataFileError(f"{row.where}: id {ident!r} repeats the id of {first[ident]}")
        first[ident] = row.where
        labels = tuple(_normalise(v, dimension, label_map, row.where) for v in raw_labels)
        adj = _normalise(adjudicated, dimension, label_map, row.where) if adjudicated else None
        gold = gold_label(labels, adj)
        items.append(LabelledItem(ident, prompt, response, labels, gold, category, source))
    return LabelledSet(name, dimension, items)


# --- presets ------------------------------------------------------------------------

# XSTest v2 completions (Röttger et al. 2024): annotation_1/2 and the adjudicated
# final_label in {1_full_compliance, 2_full_refusal, 3_partial_refusal}.
XSTEST_LABELS = {
    "1_full_compliance": "none",
    "2_full_refusal": "full",
    "3_partial_refusal": "partial",
}


def xstest_completions(folder: Path) -> LabelledSet:
    folder = Path(folder)
    files = sorted((folder / "model_completions").glob("xstest_v2_completions_*.csv"))
    if not files:
        raise DataFileError(f"{folder}: no model_completions/xstest_v2_completions_*.csv")
    items = []
    for f in files:
        model = f.stem.removeprefix("xstest_v2_completions_")
        part = _from_rows(
            "xstest",
            "refusal",
            read_rows(f),
            lambda r, m=model: (
                f"{m}/{r.text('id')}",
                r.text("prompt") or "",
                r.text("completion", required=False) or "",
                [r.get("annotation_1"), r.get("annotation_2")],
                r.text("type"),
                r.text("final_label"),
            ),
            XSTEST_LABELS,
            source=model,
        )
        items += part.items
    # The completions that stop mid-sentence are the longest of each file (145-219 words,
    # each file's maximum): its collectors' length cap cut them.
    return LabelledSet("xstest_completions", "refusal", items, token_limit=True)


def harmbench_val(folder: Path) -> LabelledSet:
    """HarmBench's classifier validation set (Mazeika et al. 2024): human_0..2, 1 = the
    generation is a harmful instance of the behaviour. The judged prompt is the behaviour
    text (what HarmBench's classifiers see), joined from the behaviours file by id; the 3
    ids no longer in that file fall back to the record's own test case."""
    folder = Path(folder)
    val = folder / "classifier_val_sets" / "text_behaviors_val_set.json"
    behaviours = folder / "behavior_datasets" / "harmbench_behaviors_text_all.csv"
    text = {
        r.text("BehaviorID"): (r.text("Behavior"), r.text("ContextString", required=False),
                               r.text("SemanticCategory"))
        for r in read_rows(behaviours)
    }  # fmt: skip
    try:
        data = json.loads(read_text(val))
    except json.JSONDecodeError as err:
        raise DataFileError(f"{val}:{err.lineno}: not valid JSON ({err.msg})") from None
    items = []
    for behaviour_id, records in data.items():
        behaviour, context, category = text.get(behaviour_id, (None, None, None))
        prompt = f"{context}\n\n---\n\n{behaviour}" if context else behaviour
        for i, rec in enumerate(records):
            where = f"{val}: {behaviour_id}[{i}]"
            labels = tuple(_normalise(rec[f"human_{k}"], "harmful", {}, where) for k in range(3))
            gold = gold_label(labels)
            assert gold is not None  # three binary labels always have a majority
            items.append(
                LabelledItem(
                    f"{behaviour_id}/{i}",
                    prompt or str(rec.get("test_case", "")),
                    str(rec.get("generation", "")),
                    labels,
                    gold,
                    category,
                    str(rec.get("experiment", "")),
                )
            )
    # HarmBench generates its completions with a token limit (512 new tokens in its
    # configs), so a completion that stops mid-sentence may be cut by it.
    return LabelledSet("harmbench_val", "harmful", items, token_limit=True)


PRESETS: dict[str, Callable[[Path], LabelledSet]] = {
    "xstest": xstest_completions,
    "harmbench_val": harmbench_val,
}


def load_preset(name: str, folder: Path) -> LabelledSet:
    if name not in PRESETS:
        raise UserError(f"unknown labelled preset {name!r} (known: {sorted(PRESETS)})")
    return PRESETS[name](folder)
