"""Reading benchmark files: local CSV / JSON / JSONL / Parquet (optionally gzipped) or a
model-hub dataset, as rows of strings, with errors that name the file, line and column.

Every loader goes through `read_rows` (local) or `source_rows` (a local path if given,
else its hub dataset), so a malformed row, a missing column or a non-UTF-8 file reads
the same way whichever benchmark it belongs to.

    rows = source_rows(path, hub="walledai/AdvBench", split="train")
    for row in rows:
        text = row.get("prompt")          # DataFileError naming file:line if missing
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capsafe.errors import UserError

SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


class DataFileError(UserError):
    """A data file that cannot be read as the loader expects; says which file, line, field."""


class HubUnavailable(DataFileError):
    """A hub dataset that could not be loaded: not in the local cache, and the hub not
    reachable (or gated). A dry run plans around it (capsafe.data.sizes)."""


@dataclass(frozen=True)
class Row:
    """One row of a data file: its fields and where it came from (for error messages)."""

    fields: Mapping[str, Any]
    where: str  # "file.csv:12" (1-based line of a CSV/JSONL file; item index in JSON)

    def get(self, column: str, *, required: bool = True, default: str | None = None) -> Any:
        """The value of `column`; a missing or empty required value raises DataFileError."""
        value = self.fields.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                known = ", ".join(map(str, self.fields)) or "none"
                raise DataFileError(
                    f"{self.where}: column {column!r} is missing or empty (columns: {known})"
                )
            return default
        return value

    def text(self, column: str, *, required: bool = True) -> str | None:
        """The value of `column` as text (a number as its digits); an object, a list or
        anything else where text is expected is a DataFileError (str() would store its
        Python repr as the text)."""
        value = self.get(column, required=required)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise DataFileError(
            f"{self.where}: column {column!r} holds {type(value).__name__} "
            f"{json.dumps(value, ensure_ascii=False, default=str)[:60]}, not text"
        )


def read_text(path: Path) -> str:
    """A file's text (gunzipped if .gz); a non-UTF-8 file is a DataFileError with its line."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:  # EOFError: a truncated file
            raise DataFileError(f"{path}: not a readable gzip file ({err})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataFileError(
            f"{path}:{line}: not UTF-8 text ({err.reason} at byte {err.start}); "
            "re-save the file as UTF-8"
        ) from None


def _kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise DataFileError(f"{path}: unsupported file type (expected one of {', '.join(SUFFIXES)})")


def read_rows(path: Path | str, *, records_key: str | None = None) -> list[Row]:
    """Every row of a local data file. JSON may be a list of objects, or an object whose
    `records_key` (or single list value) holds them."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    kind = _kind(path)
    if kind == ".parquet":
        return _parquet_rows(path)
    text = read_text(path)
    if kind in (".csv", ".tsv"):
        return list(_csv_rows(path, text, "\t" if kind == ".tsv" else ","))
    if kind == ".jsonl":
        return list(_jsonl_rows(path, text))
    return _json_rows(path, text, records_key)


def _csv_rows(path: Path, text: str, delimiter: str) -> Iterator[Row]:
    # strict: without it a stray or unclosed quote silently swallows the rest of the file
    # into one cell (rows vanish with no error); every benchmark CSV here reads strictly.
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    if not reader.fieldnames:
        raise DataFileError(f"{path}: empty file (no header row)")
    header = list(reader.fieldnames)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:  # DictReader would keep the last column of each name, silently
        raise DataFileError(
            f"{path}:1: the header repeats column(s) {', '.join(map(repr, repeated))}; "
            "rename them so each column has one name"
        )
    width = len(header)
    try:
        for fields in reader:
            line = reader.line_num
            if None in fields:  # more cells than header columns
                raise DataFileError(
                    f"{path}:{line}: {width + len(fields[None])} cells, but the header has "
                    f"{width} columns"
                )
            if None in fields.values():  # fewer cells: DictReader fills the rest with None
                cells = sum(v is not None for v in fields.values())
                raise DataFileError(
                    f"{path}:{line}: {cells} cells, but the header has {width} columns"
                )
            yield Row(fields, f"{path}:{line}")
    except csv.Error as err:
        # DictReader.line_num is only updated after a good record; the inner reader's
        # counts the line being parsed.
        hint = (
            f"; a quoted cell opened after line {reader.line_num} is never closed"
            if "unexpected end" in str(err)
            else ""
        )
        raise DataFileError(
            f"{path}:{reader.reader.line_num}: malformed CSV ({err}){hint}"
        ) from None


def _jsonl_rows(path: Path, text: str) -> Iterator[Row]:
    # split("\n"), not splitlines(): JSON strings may hold raw U+2028 or U+0085, which
    # splitlines() would treat as line breaks and cut a record in two.
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFileError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise DataFileError(f"{path}:{line_no}: expected a JSON object per line")
        yield Row(obj, f"{path}:{line_no}")


def _json_rows(path: Path, text: str, records_key: str | None) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list)]
        key = records_key or (lists[0] if len(lists) == 1 else None)
        if key is None or not isinstance(data.get(key), list):
            raise DataFileError(
                f"{path}: expected a list of records, or an object holding one "
                f"(list-valued keys: {lists or 'none'})"
            )
        data = data[key]
    if not isinstance(data, list):
        raise DataFileError(f"{path}: expected a list of records")
    rows = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise DataFileError(f"{path}: record {i}: expected an object")
        rows.append(Row(obj, f"{path}: record {i}"))
    return rows


def _parquet_rows(path: Path) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with datasets
        raise DataFileError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow)"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as err:
        raise DataFileError(f"{path}: not a readable Parquet file ({err})") from None
    return [Row(obj, f"{path}: row {i + 1}") for i, obj in enumerate(table.to_pylist())]


def find_file(folder: Path, names: Sequence[str], what: str) -> Path:
    """The first of `names` (relative paths) that exists under `folder`."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataFileError(f"{folder}: no {what} file (looked for {', '.join(names)})")


def hub_rows(
    dataset: str,
    *,
    split: str,
    config: str | None = None,
    revision: str | None = None,
    data_files: str | Sequence[str] | None = None,
    gated: bool = False,
) -> list[Row]:
    """Rows of a model-hub dataset via `datasets.load_dataset` (honours HF_HUB_OFFLINE), at
    `revision` (a commit sha pins the data; None reads the newest).

    `data_files` picks files inside the dataset repository, for datasets that keep one
    variant per file without declaring configs (SORRY-Bench's question_<style>.jsonl).
    `gated`: access needs the dataset's terms accepted and a token, which a failure says.
    """
    files = [data_files] if isinstance(data_files, str) else data_files
    try:
        from datasets import load_dataset

        ds = load_dataset(
            dataset,
            config,
            split=split,
            revision=revision,
            data_files=list(files) if files else None,
        )
    except Exception as err:
        what = (
            f"config {config!r}, split {split!r}"
            + (f", files {files}" if files else "")
            + (f", revision {revision[:12]}" if revision else "")
        )
        raise HubUnavailable(_hub_failure(dataset, what, err, gated)) from None
    where = f"{dataset}[{split}]" + (f"/{files[0]}" if files and len(files) == 1 else "")
    return [Row(obj, f"{where} row {i}") for i, obj in enumerate(ds)]


@contextmanager
def hub_offline() -> Iterator[None]:
    """Read only what the hub cache holds while the block runs (a dry run downloads
    nothing): the environment variables, for libraries imported later, and the flags of
    huggingface_hub and datasets, which read those variables once, on import."""
    import datasets.config
    import huggingface_hub.constants

    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    env = {k: os.environ.get(k) for k in names}
    flags = (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    os.environ.update(dict.fromkeys(names, "1"))
    huggingface_hub.constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = flags
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def hub_file(
    dataset: str, filename: str, *, revision: str | None = None, gated: bool = False
) -> Path:
    """One file of a model-hub dataset repository, downloaded (or found in the cache), for
    files `datasets` cannot read as the upstream means them (HEx-PHI's header-less CSVs)."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(dataset, filename, repo_type="dataset", revision=revision))
    except Exception as err:
        what = f"file {filename!r}" + (f", revision {revision[:12]}" if revision else "")
        raise HubUnavailable(_hub_failure(dataset, what, err, gated)) from None


def _hub_failure(dataset: str, what: str, err: Exception, gated: bool) -> str:
    # One line: the hub's own messages run over several (an HTTP body, a traceback hint).
    reason = " ".join(str(err).split())
    reason = reason if len(reason) <= 300 else reason[:297] + "..."
    access = (
        f"it is gated: accept its terms at https://huggingface.co/datasets/{dataset} and log "
        "in (HF_TOKEN or `huggingface-cli login`), or "
        if gated
        else ""
    )
    return (
        f"hub dataset {dataset!r} ({what}) could not be loaded ({type(err).__name__}: "
        f"{reason}); {access}download it and pass its local copy with `path:`"
    )


def source_rows(
    path: Path | str | None,
    *,
    hub: str,
    split: str = "train",
    config: str | None = None,
    revision: str | None = None,
    gated: bool = False,
    files: Sequence[str] = (),
    records_key: str | None = None,
    data_files: str | Sequence[str] | None = None,
    what: str = "data",
) -> list[Row]:
    """Rows from `path` when given (a file, or a folder holding one of `files`), else from
    the hub dataset `hub` at `revision`. This is how every hub-backed loader accepts local
    copies; `what` names the data in a folder's error."""
    if path is None:
        return hub_rows(
            hub, split=split, config=config, revision=revision, data_files=data_files, gated=gated
        )
    path = Path(path)
    if path.is_dir():
        if not files:
            raise DataFileError(f"{path}: a folder; pass the data file itself")
        path = find_file(path, files, what)
    return read_rows(path, records_key=records_key)


def apply_columns(row: Row, columns: Mapping[str, str]) -> Row:
    """The row with fields renamed from the file's names to capsafe's (`{ours: theirs}`)."""
    missing = [theirs for theirs in columns.values() if theirs not in row.fields]
    if missing:
        known = ", ".join(map(str, row.fields))
        raise DataFileError(f"{row.where}: no column {missing[0]!r} (columns: {known})")
    renamed = {ours: row.fields[theirs] for ours, theirs in columns.items()}
    return Row({**row.fields, **renamed}, row.where)
