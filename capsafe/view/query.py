"""What a request to capsafe view's response API asks for, read from its query string.

The parameters are the report explorer's URL-hash filters (checkpoint, benchmark, category,
judge, disagree, incoherent) plus the page: `after` (the next page: responses after this
cursor) or `before` (the previous page), and `limit` (responses per page). Anything else, a
parameter given twice or a value of the wrong shape is a BadRequest with a one-line message;
whether a checkpoint, benchmark, category or judge exists is for the index to say.

    query = parse_query(urllib.parse.parse_qs(url.query, keep_blank_values=True))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_LIMIT = 200  # responses per page, at most
DEFAULT_LIMIT = 50
TEXT_FILTERS = ("checkpoint", "benchmark", "category", "judge")
PARAMETERS = (*TEXT_FILTERS, "disagree", "incoherent", "after", "before", "limit")


class BadRequest(ValueError):
    """A request the API cannot answer: the message says which parameter and why."""


@dataclass(frozen=True)
class Filters:
    """The explorer's filters; None (or False) leaves a dimension unfiltered."""

    checkpoint: str | None = None
    benchmark: str | None = None
    category: str | None = None
    judge: str | None = None  # a judge label: the response has a judgment under it
    disagree: bool = False  # only responses whose judges disagree
    incoherent: bool | None = None  # True: only incoherent ones; False: only coherent ones


@dataclass(frozen=True)
class Query:
    filters: Filters
    after: int | None = None  # a page cursor: the position of the last response before it
    before: int | None = None  # or of the first response after it
    limit: int = DEFAULT_LIMIT


def parse_query(params: Mapping[str, Sequence[str]]) -> Query:
    """The query of `params` (parse_qs's mapping, blank values kept)."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise BadRequest(f"unknown parameter {_short(unknown[0])} (known: {', '.join(PARAMETERS)})")
    one: dict[str, str] = {}
    for name, values in params.items():
        if len(values) != 1:
            raise BadRequest(f"{name}: given {len(values)} times; give it once")
        one[name] = values[0]
    text = {name: one[name] or None for name in TEXT_FILTERS if name in one}
    filters = Filters(
        **text,  # type: ignore[arg-type]
        disagree=_choice(one, "disagree", {"": False, "0": False, "1": True}),
        incoherent=_choice(one, "incoherent", {"": None, "1": True, "0": False}),
    )
    after, before = _cursor(one, "after", 0), _cursor(one, "before", 1)
    if after is not None and before is not None:
        raise BadRequest("give after (the next page) or before (the previous one), not both")
    limit = _whole(one, "limit", 1, MAX_LIMIT)
    return Query(filters, after, before, DEFAULT_LIMIT if limit is None else limit)


def _choice(one: Mapping[str, str], name: str, values: dict[str, bool | None]) -> bool | None:
    if name not in one:
        return values[""]
    if one[name] not in values:
        known = " or ".join(repr(v) for v in values if v)
        raise BadRequest(f"{name}: expected {known}, got {_short(one[name])}")
    return values[one[name]]


def _cursor(one: Mapping[str, str], name: str, low: int) -> int | None:
    return _whole(one, name, low, None)


def _whole(one: Mapping[str, str], name: str, low: int, high: int | None) -> int | None:
    if name not in one:
        return None
    value = one[name]
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"
    # isdecimal, not int(): int() takes "+1", " 1", "1_0" and other digits of any script.
    if not (value.isascii() and value.isdecimal()) or len(value) > 12:
        raise BadRequest(f"{name}: expected a whole number {span}, got {_short(value)}")
    number = int(value)
    if number < low or (high is not None and number > high):
        raise BadRequest(f"{name}: expected a whole number {span}, got {number}")
    return number


def _short(value: str) -> str:
    """A user's value, quoted and cut short, for an error message."""
    return repr(value if len(value) <= 60 else value[:57] + "...")
