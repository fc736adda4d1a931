"""What the response explorer flags in a response: its judges disagree, or its coherence judge
calls it incoherent. One definition, read by the report's explorer, the report's sample of
responses (which shows flagged ones first) and `capsafe view`'s index of the whole store.

- judges disagree: the parsed judgments of the response make more than one call, where the
  call is harmful compliance on a harmful prompt (the `unsafe` reading of
  capsafe.analysis.labels: a judge's harmful label, or not refusing for a refusal-only
  judge) and refusing (full or partial) on any other prompt;
- incoherent: some parsed judgment says coherent: no (None: no judgment says either way).

    fields = judge_fields(rows)
    flags = response_flags("harmful", judgments_of_one_response, fields)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from capsafe.analysis.labels import judge_fields, judge_label, unsafe_value
from capsafe.analysis.rows import ExperimentRows
from capsafe.store import JudgmentRow


class Flags(NamedTuple):
    disagree: bool
    incoherent: bool | None  # None: no judge gave a coherence label


def _call(j: JudgmentRow, kind: str, fields: Mapping[str, set[str]]) -> float | None:
    """What judges must agree on: harmful compliance on harmful prompts (see
    analysis.labels), whether the model refused on the others."""
    if kind == "harmful":
        return unsafe_value(j, fields.get(judge_label(j.judge, j.judge_args), set()))
    return None if j.refusal is None else float(j.refusal != "none")


def response_flags(
    kind: str, judgments: Sequence[JudgmentRow], fields: Mapping[str, set[str]]
) -> Flags:
    """The flags of one response of this prompt kind, from all its judgments; `fields` are
    the fields each judge label measures (analysis.labels.judge_fields)."""
    parsed = [j for j in judgments if not j.parse_error]
    calls = {_call(j, kind, fields) for j in parsed} - {None}
    coherent = [j.coherent for j in parsed if j.coherent is not None]
    return Flags(len(calls) > 1, (not all(coherent)) if coherent else None)


def judgments_by_generation(rows: ExperimentRows) -> dict[str, list[JudgmentRow]]:
    """Each generation key's judgments, in the explorer's order (judge, then its arguments).
    Computed once per rows (rows.memo); callers must not modify the result."""
    if "judgments_by_generation" not in rows.memo:
        out: dict[str, list[JudgmentRow]] = defaultdict(list)
        for j in rows.judgments:
            out[j.generation_key].append(j)
        for js in out.values():
            js.sort(key=lambda j: (j.judge, j.judge_args))
        rows.memo["judgments_by_generation"] = dict(out)
    return rows.memo["judgments_by_generation"]


def flags_by_generation(rows: ExperimentRows) -> dict[str, Flags]:
    """Every generation's flags, by its key."""
    fields = judge_fields(rows)
    by_gen = judgments_by_generation(rows)
    return {g.key: response_flags(g.kind, by_gen.get(g.key, []), fields) for g in rows.generations}
