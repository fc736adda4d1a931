"""What every safety-benchmark loader shares: option checks, hub or local rows, stable ids.

Loaders validate their options here so a typo fails the same way everywhere (naming the
set, the option and the accepted values), read their hub copy or a local one through
`set_rows`, and build ids that do not depend on filters.

    HUB = Hub("walledai/AdvBench", revision="9d47305...", gated=True)
    split = one_of("harmbench", "split", split, ("test", "val", "all"))
    rows = set_rows("advbench", path, ["harmful_behaviors.csv"], hub=HUB, split="train")
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from capsafe.data import files
from capsafe.data.files import DataFileError, Row, find_file, read_rows
from capsafe.records import PromptRecord


@dataclass(frozen=True)
class Hub:
    """A set's default copy on the model hub: the dataset id, the revision read (a commit sha
    of the dataset repository; None reads the newest), and whether access is gated (its
    terms accepted and a token needed, which a failure to load says)."""

    dataset: str
    revision: str | None = None
    gated: bool = False


def one_of(set_name: str, option: str, value: object, allowed: Sequence[str]) -> str:
    """`value` if it is one of `allowed`, else a ValueError naming the set and option."""
    if isinstance(value, str) and value in allowed:
        return value
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"prompt set {set_name!r}: {option}={value!r} is not one of "
        f"{', '.join(map(repr, allowed))}{hint}"
    )


def many_of(
    set_name: str, option: str, values: str | Iterable[str] | None, allowed: Sequence[str]
) -> list[str] | None:
    """A validated list from one value or several; None means no filter (all of them)."""
    if values is None:
        return None
    chosen = [values] if isinstance(values, str) else list(values)
    return [one_of(set_name, option, v, allowed) for v in chosen]


def set_rows(
    set_name: str,
    path: Path | str | None,
    names: Sequence[str],
    *,
    hub: Hub,
    split: str,
    config: str | None = None,
) -> list[Row]:
    """Rows of a set from its local copy when `path` is given (the file, or a folder holding
    one of `names`), else from `hub`'s `config`/`split` at its pinned revision."""
    return files.source_rows(path, hub=hub.dataset, split=split, config=config,
                             revision=hub.revision, gated=hub.gated, files=names,
                             what=f"{set_name} data")  # fmt: skip


def local_rows(
    set_name: str,
    path: Path | str | None,
    names: Sequence[str],
    *,
    upstream: str,
    records_key: str | None = None,
) -> list[Row]:
    """Rows of a set that has no hub copy: `path` is required (the file itself, or a folder
    holding one of `names`)."""
    if path is None:
        raise DataFileError(
            f"prompt set {set_name!r} has no hub dataset in its upstream format; pass `path:` "
            f"to a local copy of {upstream} (the file, or the folder holding it)"
        )
    return local_copy(set_name, path, names, records_key=records_key)


def local_copy(
    set_name: str, path: Path | str, names: Sequence[str], *, records_key: str | None = None
) -> list[Row]:
    """Rows of a local copy: `path` is the file itself, or a folder holding one of `names`."""
    path = Path(path)
    if path.is_dir():
        path = find_file(path, names, f"{set_name} data")
    return read_rows(path, records_key=records_key)


def content_id(text: str) -> str:
    """A stable id for a prompt that has none of its own: a digest of its text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def meta(**fields: object) -> dict[str, str]:
    """Record metadata as str -> str, leaving out empty values."""
    return {k: str(v) for k, v in fields.items() if v is not None and str(v).strip() != ""}


def drop_repeats(records: Iterable[PromptRecord], where: str) -> list[PromptRecord]:
    """Records with exact repeats (same id and text) dropped; the same id with another text
    is an error, since ids key stored generations."""
    seen: dict[str, str] = {}
    out = []
    for r in records:
        if r.id in seen:
            if seen[r.id] != r.text:
                raise DataFileError(f"{where}: id {r.id!r} names two different prompts")
            continue
        seen[r.id] = r.text
        out.append(r)
    return out
