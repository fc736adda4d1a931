"""The results store: one SQLite file in the experiment folder.

Every generation, judgment and capability score is stored under a key derived from
everything that determined it (see capsafe.keys). Writes are batched transactions with
INSERT OR IGNORE on the key, so a killed run loses at most the batch in flight, and a
rerun never writes a row twice. Every row carries the capsafe version that produced it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from capsafe import __version__
from capsafe.errors import UserError

SCHEMA_VERSION = 5
_FAILURES = """CREATE TABLE IF NOT EXISTS failures (
    run_id TEXT PRIMARY KEY, reason TEXT NOT NULL, step INTEGER, epochs_kept INTEGER NOT NULL,
    capsafe_version TEXT NOT NULL, created_at REAL NOT NULL);"""
_REQUEST_FAILURES = """CREATE TABLE IF NOT EXISTS request_failures (
    key TEXT PRIMARY KEY, model_key TEXT NOT NULL, error TEXT NOT NULL,
    capsafe_version TEXT NOT NULL, created_at REAL NOT NULL);"""
# Forward migrations from each older schema version (applied in order, in one transaction).
_MIGRATIONS = {
    1: "ALTER TABLE scores ADD COLUMN value REAL;",  # graded capability scores
    2: "ALTER TABLE judgments ADD COLUMN truncated INTEGER;",  # cut at the token limit
    3: _FAILURES,  # runs whose training diverged
    4: _REQUEST_FAILURES,  # requests a served model never answered
}

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns));
CREATE TABLE IF NOT EXISTS models (
    model_key TEXT PRIMARY KEY, base_name TEXT NOT NULL, base_path TEXT NOT NULL,
    base_key TEXT NOT NULL, run_id TEXT, epoch INTEGER, adapter_dir TEXT,
    capsafe_version TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, base_name TEXT NOT NULL, base_key TEXT NOT NULL,
    task TEXT NOT NULL, hparams TEXT NOT NULL, seed INTEGER NOT NULL, epochs INTEGER NOT NULL,
    settings TEXT NOT NULL, capsafe_version TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, model_key TEXT NOT NULL,
    adapter_dir TEXT NOT NULL, train_loss REAL, steps INTEGER,
    capsafe_version TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (run_id, epoch));
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY, model_key TEXT NOT NULL, prompt_set TEXT NOT NULL,
    prompt_id TEXT NOT NULL, kind TEXT NOT NULL, category TEXT, prompt TEXT NOT NULL,
    reference TEXT, format TEXT NOT NULL, format_spec TEXT NOT NULL, decoding TEXT NOT NULL,
    sample_seed INTEGER NOT NULL, response TEXT NOT NULL, n_prompt_tokens INTEGER NOT NULL,
    n_completion_tokens INTEGER NOT NULL, finish_reason TEXT NOT NULL, backend TEXT NOT NULL,
    capsafe_version TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS generations_model ON generations (model_key);
CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY, generation_key TEXT NOT NULL, judge TEXT NOT NULL,
    judge_version TEXT NOT NULL, judge_args TEXT NOT NULL, harmful INTEGER, harmful_prob REAL,
    refusal TEXT, coherent INTEGER, relevant INTEGER, parse_error INTEGER NOT NULL,
    raw TEXT NOT NULL, capsafe_version TEXT NOT NULL, created_at REAL NOT NULL,
    truncated INTEGER);
CREATE INDEX IF NOT EXISTS judgments_generation ON judgments (generation_key);
CREATE TABLE IF NOT EXISTS scores (
    key TEXT PRIMARY KEY, generation_key TEXT NOT NULL, task TEXT NOT NULL,
    task_version TEXT NOT NULL, correct INTEGER NOT NULL, extracted TEXT, value REAL,
    capsafe_version TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS scores_generation ON scores (generation_key);
"""
    + _FAILURES
    + _REQUEST_FAILURES
)


@dataclass(frozen=True)
class ModelRow:
    """A model that produced generations: a base (run_id None) or a base + epoch adapter."""

    model_key: str
    base_name: str
    base_path: str
    base_key: str
    run_id: str | None = None
    epoch: int | None = None
    adapter_dir: str | None = None


@dataclass(frozen=True)
class RunRow:
    """One fine-tuning run: a base, a task, one hyperparameter setting and one seed."""

    run_id: str
    base_name: str
    base_key: str
    task: str
    hparams: str  # canonical JSON of the grid setting (learning_rate, rank, alpha, epochs)
    seed: int
    epochs: int
    settings: str  # canonical JSON of everything else that shaped the run


@dataclass(frozen=True)
class FailureRow:
    """A run whose training diverged (non-finite loss or weights): why, at which step, and
    how many finished epochs before it were kept (evaluated like any other checkpoint)."""

    run_id: str
    reason: str
    step: int | None
    epochs_kept: int


@dataclass(frozen=True)
class RequestFailureRow:
    """A generation a served model never answered (retries spent): no response is stored,
    the next run sends it again, and the row goes once it is answered."""

    key: str  # the generation's key
    model_key: str
    error: str


@dataclass(frozen=True)
class CheckpointRow:
    run_id: str
    epoch: int
    model_key: str
    adapter_dir: str
    train_loss: float | None
    steps: int | None


@dataclass(frozen=True)
class GenerationRow:
    key: str
    model_key: str
    prompt_set: str
    prompt_id: str
    kind: str
    category: str | None
    prompt: str
    reference: str | None
    format: str
    format_spec: str  # canonical JSON of the format
    decoding: str  # canonical JSON of the decoding settings
    sample_seed: int
    response: str
    n_prompt_tokens: int
    n_completion_tokens: int
    finish_reason: str
    backend: str


@dataclass(frozen=True)
class JudgmentRow:
    key: str
    generation_key: str
    judge: str
    judge_version: str
    judge_args: str  # canonical JSON
    harmful: bool | None
    harmful_prob: float | None
    refusal: str | None
    coherent: bool | None
    relevant: bool | None
    parse_error: bool
    raw: str
    truncated: bool | None = None  # a coherence judge's "cut at the token limit"


@dataclass(frozen=True)
class ScoreRow:
    key: str
    generation_key: str
    task: str
    task_version: str
    correct: bool
    extracted: str | None
    value: float | None = None  # a graded score in [0, 1], where the task has one


R = TypeVar("R")
_BOOL_FIELDS = {"harmful", "coherent", "relevant", "truncated", "parse_error", "correct"}


def _from_sql(cls: type[R], row: sqlite3.Row) -> R:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: row[k] for k in row.keys() if k in names}
    for k in _BOOL_FIELDS & values.keys():
        if values[k] is not None:
            values[k] = bool(values[k])
    return cls(**values)


RESULT_TABLES = ("models", "runs", "checkpoints", "generations", "judgments", "scores", "failures")


class Store:
    """The experiment's SQLite store. One writer process; readers may be many."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """Open (creating and migrating it if need be) the store at `path`.

        read_only: only read it (capsafe view): nothing is created, migrated or written, and
        the connection may be used from any thread, one at a time (the caller serialises
        them). Not a capsafe store of this schema version: a UserError.
        """
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            self._open_read_only()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.row_factory = sqlite3.Row
        # WAL keeps committed batches safe when the process is killed mid-write.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            fresh = not self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'meta'"
            ).fetchone()
            if fresh:
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
        self._migrate()
        found = self.meta("schema_version")
        if found != str(SCHEMA_VERSION):
            raise RuntimeError(
                f"{self.path}: store schema version {found}, this capsafe reads {SCHEMA_VERSION}"
            )

    def _open_read_only(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such store")
        uri = self.path.resolve().as_uri() + "?mode=ro"
        self._db = sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        try:
            found = self.meta("schema_version")
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise UserError(f"{self.path}: not a capsafe store ({err})") from None
        if found != str(SCHEMA_VERSION):
            self._db.close()
            newer = found is not None and found.isdigit() and int(found) > SCHEMA_VERSION
            raise UserError(
                f"{self.path}: store schema version {found}, this capsafe reads {SCHEMA_VERSION}"
                + ("; upgrade capsafe" if newer else "; `capsafe report DIR` upgrades it")
            )

    def _migrate(self) -> None:
        found = self.meta("schema_version")
        if found is None or not found.isdigit() or int(found) >= SCHEMA_VERSION:
            return  # current, or newer than this capsafe (refused by the caller)
        with self._db:
            for version in range(int(found), SCHEMA_VERSION):
                self._db.executescript(_MIGRATIONS[version])
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generic helpers -------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _insert(self, table: str, rows: Sequence[Any], replace: bool = False) -> int:
        """Insert dataclass rows in one transaction; returns how many were new."""
        if not rows:
            return 0
        with self._db:
            return self._insert_in(table, rows, replace)

    def _insert_in(self, table: str, rows: Sequence[Any], replace: bool = False) -> int:
        """The insert of _insert, inside the caller's transaction: one executemany of
        tuples (no dict per row), and the revision moved on when any row is new."""
        names = [f.name for f in fields(rows[0])]
        cols = [*names, "capsafe_version", "created_at"]
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        sql = f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        get, now = attrgetter(*names), time.time()
        before = self._db.total_changes
        if len(names) == 1:
            self._db.executemany(sql, [(get(r), __version__, now) for r in rows])
        else:
            self._db.executemany(sql, [(*get(r), __version__, now) for r in rows])
        written = self._db.total_changes - before
        if written:
            self._bump_revision()
        return written

    def _bump_revision(self) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES ('revision', '1') ON CONFLICT (key) DO UPDATE "
            "SET value = CAST(value AS INTEGER) + 1"
        )

    def revision(self) -> int:
        """A count that moves on with every transaction that changes result rows (0: none
        yet), so a report can tell it was rendered from exactly this content."""
        return int(self.meta("revision") or 0)

    def _select(self, cls: type[R], sql: str, args: Iterable[Any] = ()) -> list[R]:
        return [_from_sql(cls, r) for r in self._db.execute(sql, tuple(args))]

    def existing_keys(self, table: str, keys: Sequence[str]) -> set[str]:
        """Which of `keys` are stored already in `table` (generations, judgments, scores)."""
        assert table in {"generations", "judgments", "scores"}
        found: set[str] = set()
        for chunk in _chunks(list(keys), 500):
            sql = f"SELECT key FROM {table} WHERE key IN ({', '.join('?' * len(chunk))})"
            found.update(r[0] for r in self._db.execute(sql, chunk))
        return found

    def count(self, table: str) -> int:
        assert table in {"models", "runs", "checkpoints", "generations", "judgments", "scores"}
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # -- file hashes (memoised by path, size and mtime) --------------------------------

    def cached_file_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        row = self._db.execute(
            "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
            (path, size, mtime_ns),
        ).fetchone()
        return None if row is None else row[0]

    def put_file_hash(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                (path, size, mtime_ns, sha256),
            )

    # -- typed tables ------------------------------------------------------------------

    def put_model(self, row: ModelRow) -> None:
        """Store a model; where two runs made the same adapter (one model key), the row names
        the run with the smaller id, whichever stored it first (so that runs trained at the
        same time, on Ray, store what runs trained in turn store)."""
        with self._db:
            if self._insert_in("models", [row]) or row.run_id is None:
                return
            before = self._db.total_changes
            self._db.execute(
                "UPDATE models SET run_id = ?, epoch = ?, adapter_dir = ? WHERE model_key = ? "
                "AND run_id IS NOT NULL AND run_id > ?",
                (row.run_id, row.epoch, row.adapter_dir, row.model_key, row.run_id),
            )
            if self._db.total_changes != before:
                self._bump_revision()

    def put_run(self, row: RunRow) -> None:
        self._insert("runs", [row])

    def put_checkpoint(self, row: CheckpointRow) -> None:
        self._insert("checkpoints", [row])

    def put_failure(self, row: FailureRow) -> None:
        self._insert("failures", [row])

    def failures(self) -> list[FailureRow]:
        return self._select(FailureRow, "SELECT * FROM failures ORDER BY created_at, run_id")

    def put_generations(self, rows: Sequence[GenerationRow]) -> int:
        """Store the rows; a request failure recorded for one of them is answered now (in the
        same transaction: a crash keeps both or neither)."""
        if not rows:
            return 0
        with self._db:
            written = self._insert_in("generations", rows)
            answered = self._db.total_changes
            for chunk in _chunks([r.key for r in rows], 500):
                sql = f"DELETE FROM request_failures WHERE key IN ({', '.join('?' * len(chunk))})"
                self._db.execute(sql, chunk)
            if self._db.total_changes > answered and not written:
                self._bump_revision()
        return written

    def put_request_failures(self, rows: Sequence[RequestFailureRow]) -> None:
        self._insert("request_failures", rows, replace=True)  # the latest error is kept

    def request_failures(self) -> list[RequestFailureRow]:
        return self._select(RequestFailureRow, "SELECT * FROM request_failures ORDER BY key")

    def put_judgments(self, rows: Sequence[JudgmentRow]) -> int:
        return self._insert("judgments", rows)

    def put_scores(self, rows: Sequence[ScoreRow]) -> int:
        return self._insert("scores", rows)

    def models(self) -> list[ModelRow]:
        return self._select(ModelRow, "SELECT * FROM models ORDER BY base_name, run_id, epoch")

    def runs(self) -> list[RunRow]:
        return self._select(RunRow, "SELECT * FROM runs ORDER BY created_at, run_id")

    def checkpoints(self, run_id: str | None = None) -> list[CheckpointRow]:
        if run_id is None:
            return self._select(CheckpointRow, "SELECT * FROM checkpoints ORDER BY run_id, epoch")
        return self._select(
            CheckpointRow, "SELECT * FROM checkpoints WHERE run_id = ? ORDER BY epoch", (run_id,)
        )

    def generations(self, model_key: str | None = None) -> list[GenerationRow]:
        if model_key is None:
            return self._select(GenerationRow, "SELECT * FROM generations ORDER BY key")
        return self._select(
            GenerationRow,
            "SELECT * FROM generations WHERE model_key = ? ORDER BY key",
            (model_key,),
        )

    def generations_by_key(self, keys: Sequence[str]) -> dict[str, GenerationRow]:
        out: dict[str, GenerationRow] = {}
        for chunk in _chunks(list(keys), 500):
            sql = f"SELECT * FROM generations WHERE key IN ({', '.join('?' * len(chunk))})"
            out.update((g.key, g) for g in self._select(GenerationRow, sql, chunk))
        return out

    def judgments(self) -> list[JudgmentRow]:
        return self._select(JudgmentRow, "SELECT * FROM judgments ORDER BY key")

    def judgments_of(self, generation_keys: Sequence[str]) -> list[JudgmentRow]:
        """The judgments of these generations."""
        out: list[JudgmentRow] = []
        for chunk in _chunks(list(generation_keys), 500):
            marks = ", ".join("?" * len(chunk))
            out += self._select(
                JudgmentRow, f"SELECT * FROM judgments WHERE generation_key IN ({marks})", chunk
            )
        return out

    def reader(self) -> sqlite3.Connection:
        """The connection of a store opened read_only, for a reading tool's own queries and
        TEMP tables (capsafe view's index); nothing can write the store through it."""
        if not self.read_only:
            raise RuntimeError("Store.reader() is for a store opened with read_only=True")
        return self._db

    def scores(self, keys: Sequence[str] | None = None) -> list[ScoreRow]:
        """Every score, or those under `keys`."""
        if keys is None:
            return self._select(ScoreRow, "SELECT * FROM scores ORDER BY key")
        out: list[ScoreRow] = []
        for chunk in _chunks(list(keys), 500):
            sql = f"SELECT * FROM scores WHERE key IN ({', '.join('?' * len(chunk))})"
            out += self._select(ScoreRow, sql, chunk)
        return out

    def versions(self) -> dict[str, list[str]]:
        """The capsafe versions that wrote each result table."""
        out = {}
        for table in (*RESULT_TABLES, "request_failures"):
            sql = f"SELECT DISTINCT capsafe_version FROM {table} ORDER BY 1"
            out[table] = [r[0] for r in self._db.execute(sql)]
        return out

    def dump(self, folder: Path | None = None) -> dict[str, list[dict[str, Any]]]:
        """Every result table as plain rows without timestamps (for comparing two stores).

        With `folder` (the experiment's output_dir), paths under it read `<OUT>`, so the
        stores of one experiment run in two folders compare equal."""
        prefix = None if folder is None else str(folder)

        def plain(row: sqlite3.Row) -> dict[str, Any]:
            values = {k: row[k] for k in row.keys() if k != "created_at"}
            if prefix is None:
                return values
            return {k: v.replace(prefix, "<OUT>") if isinstance(v, str) else v
                    for k, v in values.items()}  # fmt: skip

        out: dict[str, list[dict[str, Any]]] = {}
        for table in (*RESULT_TABLES, "request_failures"):
            rows = self._db.execute(f"SELECT * FROM {table}").fetchall()
            out[table] = sorted(
                map(plain, rows), key=lambda d: json.dumps(d, sort_keys=True, default=str)
            )
        return out


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
