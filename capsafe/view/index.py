"""capsafe view's index of a store: every stored response, filterable like the report's explorer.

Three of the explorer's filters are not columns of the store: a response's checkpoint name,
whether its judges disagree and whether it is incoherent are read from its model and its
judgments, by the report's own definitions (capsafe.report.explorer.checkpoint_names,
capsafe.report.flags.response_flags). So the index reads the store once, when it is made
(one pass over the judgments, in one read transaction), into TEMP tables of its read-only
connection: the store itself is never written and gains no index. Each page is then a
parameterised query on them:

    explorer_index(pos, gid, ck, b, c, d, i)  one row per response (gid: its rowid in
                                              generations); pos: the report's order
                                              (checkpoint name, key) and the pages' cursor
    explorer_judged(jl, pos)                  the judge labels each response was judged by

Pages are keyset pages on pos (WHERE ... AND pos > cursor ORDER BY pos LIMIT n), so the last
page of a million responses costs what the first does. Responses stored after the index was
made are not in it: stale() says so, and a restart of capsafe view reads them.

    index = ExplorerIndex(Store(db, read_only=True))
    page = index.page(Query(Filters(benchmark="organism/harmful", disagree=True)))
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from itertools import groupby

from capsafe.analysis.labels import judge_label, measured_fields
from capsafe.analysis.rows import ExperimentRows
from capsafe.report.explorer import checkpoint_names, explorer_record
from capsafe.report.flags import response_flags
from capsafe.store import JudgmentRow, Store
from capsafe.view.query import BadRequest, Filters, Query

_TABLES = (
    "CREATE TEMP TABLE view_models (model_key TEXT PRIMARY KEY, ck INTEGER NOT NULL)",
    "CREATE TEMP TABLE view_flags (gid INTEGER PRIMARY KEY, d INTEGER NOT NULL, i INTEGER)",
    "CREATE TEMP TABLE view_judged (jl INTEGER NOT NULL, gid INTEGER NOT NULL)",
    "CREATE TEMP TABLE explorer_index (pos INTEGER PRIMARY KEY, gid INTEGER NOT NULL, "
    "ck INTEGER NOT NULL, b TEXT NOT NULL, c TEXT NOT NULL, d INTEGER NOT NULL, i INTEGER)",
    "CREATE TEMP TABLE explorer_judged (jl INTEGER NOT NULL, pos INTEGER NOT NULL, "
    "PRIMARY KEY (jl, pos)) WITHOUT ROWID",
)
_FILL = (
    "INSERT INTO explorer_index (pos, gid, ck, b, c, d, i) "
    "SELECT ROW_NUMBER() OVER (ORDER BY m.ck, g.key), g.rowid, m.ck, g.prompt_set, "
    "COALESCE(g.category, ''), COALESCE(f.d, 0), f.i "
    "FROM generations g JOIN view_models m ON m.model_key = g.model_key "
    "LEFT JOIN view_flags f ON f.gid = g.rowid",
    "CREATE UNIQUE INDEX temp.explorer_gid ON explorer_index (gid)",
    "INSERT OR IGNORE INTO explorer_judged (jl, pos) "
    "SELECT t.jl, x.pos FROM view_judged t JOIN explorer_index x ON x.gid = t.gid",
    *(f"CREATE INDEX temp.explorer_{c} ON explorer_index ({c})" for c in ("ck", "b", "c", "d")),
    "CREATE INDEX temp.explorer_i ON explorer_index (i)",
    "DROP TABLE view_models",
    "DROP TABLE view_flags",
    "DROP TABLE view_judged",
)
# One judgment of each judge and pattern of fields set: all measured_fields needs (SQLite
# gives a grouped query's bare columns from one row of the group).
_JUDGE_PATTERNS = (
    "SELECT judge, judge_args, harmful, refusal, coherent, truncated, parse_error, "
    "harmful_prob FROM judgments GROUP BY judge, judge_args, parse_error, harmful IS NULL, "
    "harmful_prob IS NULL, refusal IS NULL, coherent IS NULL, truncated IS NULL"
)
_VERDICTS = (  # what the flags read of each judgment (not harmful_prob: a float per row)
    "SELECT g.rowid, g.kind, j.judge, j.judge_args, j.harmful, j.refusal, j.coherent, "
    "j.truncated, j.parse_error "
    "FROM generations g JOIN judgments j ON j.generation_key = g.key ORDER BY g.rowid"
)
_BATCH = 20_000  # rows written to the TEMP tables at a time


@dataclass(frozen=True)
class Options:
    """Every value each filter can take (the explorer's select boxes), and the count."""

    checkpoints: list[str]
    benchmarks: list[str]
    categories: list[str]
    judges: list[str]
    total: int  # responses in the index


@dataclass(frozen=True)
class Page:
    records: list[dict[str, object]]  # explorer records (explorer_record), each with its "pos"
    matched: int  # responses that match the filters, on every page
    first: int  # position of the first record among them (1-based; 0: none match)
    prev: int | None  # the `before` cursor of the previous page; None on the first
    next: int | None  # the `after` cursor of the next page; None on the last


class ExplorerIndex:
    """The index of one store opened read-only; its methods may be called from any thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = store.reader()
        self._db.isolation_level = None  # explicit transactions: the build reads one snapshot
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self.revision = store.revision()
                rows = ExperimentRows(store.models(), store.runs(), [], [], [], [])
                self.names = checkpoint_names(rows)  # model key -> the explorer's name
                self.options = self._build()
            finally:
                self._db.execute("COMMIT")

    def stale(self) -> bool:
        """Whether the store has changed since the index was made."""
        with self._lock:
            return self.store.revision() != self.revision

    def _build(self) -> Options:
        db = self._db
        keys = [r[0] for r in db.execute("SELECT DISTINCT model_key FROM generations")]
        checkpoints = sorted({self.names.get(k, k) for k in keys})
        patterns = [_verdict_row(r[:7], r[7]) for r in db.execute(_JUDGE_PATTERNS)]
        self.fields = measured_fields(patterns)
        judges = sorted({judge_label(j.judge, j.judge_args) for j in patterns})
        for sql in _TABLES:
            db.execute(sql)
        ck = {name: i for i, name in enumerate(checkpoints)}
        models = [(k, ck[self.names.get(k, k)]) for k in keys]
        db.executemany("INSERT INTO view_models VALUES (?, ?)", models)
        self._read_verdicts({name: i for i, name in enumerate(judges)})
        for sql in _FILL:
            db.execute(sql)
        distinct = "SELECT DISTINCT {0} FROM explorer_index WHERE {0} != '' ORDER BY {0}"
        return Options(
            checkpoints=checkpoints,
            benchmarks=[r[0] for r in db.execute(distinct.format("b"))],
            categories=[r[0] for r in db.execute(distinct.format("c"))],
            judges=judges,
            total=db.execute("SELECT COUNT(*) FROM explorer_index").fetchone()[0],
        )

    def _read_verdicts(self, label: dict[str, int]) -> None:
        """Every judged response's flags (where it has one) and judge labels, into the TEMP
        tables view_flags and view_judged."""
        flags: list[tuple[int, int, int | None]] = []
        judged: list[tuple[int, int]] = []
        # A response's flags and labels follow from its kind and its judgments' verdicts,
        # and a store holds few distinct combinations of them: each is worked out once.
        seen: dict[tuple, tuple[tuple[int, int | None] | None, set[int]]] = {}
        reading = self._db.cursor()  # a cursor of its own: the inserts below use the connection
        for gid, group in groupby(reading.execute(_VERDICTS), key=lambda r: r[0]):
            found = list(group)
            key = (found[0][1], *(r[2:] for r in found))
            if key not in seen:
                js = [_verdict_row(r[2:], None) for r in found]
                f = response_flags(found[0][1], js, self.fields)
                i = None if f.incoherent is None else int(f.incoherent)
                codes = {label[judge_label(j.judge, j.judge_args)] for j in js}
                seen[key] = ((int(f.disagree), i) if f.disagree or i is not None else None, codes)
            flagged, codes = seen[key]
            if flagged is not None:
                flags.append((gid, *flagged))
            judged += [(c, gid) for c in codes]
            if len(judged) >= _BATCH:
                self._flush(flags, judged)
        self._flush(flags, judged)

    def _flush(self, flags: list, judged: list) -> None:
        self._db.executemany("INSERT INTO view_flags VALUES (?, ?, ?)", flags)
        self._db.executemany("INSERT INTO view_judged VALUES (?, ?)", judged)
        flags.clear()
        judged.clear()

    def page(self, query: Query) -> Page:
        """One page of the responses that match: the first, or after or before a cursor."""
        where, args = self._where(query.filters)
        count = f"SELECT COUNT(*) FROM explorer_index WHERE {where}"
        with self._lock:
            found = self._positions(where, args, query)
            matched = self._db.execute(count, args).fetchone()[0]
            earlier = 0
            if found:
                earlier = self._db.execute(f"{count} AND pos < ?", (*args, found[0])).fetchone()[0]
            records = self._records(found)
        return Page(
            records=records,
            matched=matched,
            first=earlier + 1 if found else 0,
            prev=found[0] if found and earlier > 0 else None,
            next=found[-1] if found and earlier + len(found) < matched else None,
        )

    def _positions(self, where: str, args: list[object], query: Query) -> list[int]:
        """The positions of the page's responses, in order."""
        select = f"SELECT pos FROM explorer_index WHERE {where}"
        if query.before is not None:
            sql = f"{select} AND pos < ? ORDER BY pos DESC LIMIT ?"
            return [r[0] for r in self._db.execute(sql, (*args, query.before, query.limit))][::-1]
        sql = f"{select} AND pos > ? ORDER BY pos LIMIT ?"
        return [r[0] for r in self._db.execute(sql, (*args, query.after or 0, query.limit))]

    def _where(self, f: Filters) -> tuple[str, list[object]]:
        """The filters as a WHERE clause of fixed text, with a ? for every value."""
        o = self.options
        clauses, args = ["1"], []
        if f.checkpoint is not None:
            clauses.append("ck = ?")
            args.append(_known(f.checkpoint, o.checkpoints, "checkpoint"))
        if f.benchmark is not None:
            clauses.append("b = ?")
            args.append(o.benchmarks[_known(f.benchmark, o.benchmarks, "benchmark")])
        if f.category is not None:
            clauses.append("c = ?")
            args.append(o.categories[_known(f.category, o.categories, "category")])
        if f.judge is not None:
            clauses.append("pos IN (SELECT pos FROM explorer_judged WHERE jl = ?)")
            args.append(_known(f.judge, o.judges, "judge"))
        if f.disagree:
            clauses.append("d = 1")
        if f.incoherent is not None:
            clauses.append("i = ?")
            args.append(int(f.incoherent))
        return " AND ".join(clauses), args

    def _records(self, positions: list[int]) -> list[dict[str, object]]:
        """The explorer records of the responses at these positions, in their order."""
        if not positions:
            return []
        marks = ", ".join("?" * len(positions))
        sql = (
            "SELECT x.pos, g.key FROM explorer_index x JOIN generations g ON g.rowid = x.gid "
            f"WHERE x.pos IN ({marks})"
        )
        key_of: dict[int, str] = dict(self._db.execute(sql, positions).fetchall())
        gens = self.store.generations_by_key(list(key_of.values()))
        judgments: dict[str, list[JudgmentRow]] = {}
        for j in self.store.judgments_of(list(key_of.values())):
            judgments.setdefault(j.generation_key, []).append(j)
        out = []
        for pos in positions:
            g = gens[key_of[pos]]
            js = sorted(judgments.get(g.key, []), key=lambda j: (j.judge, j.judge_args))
            flags = response_flags(g.kind, js, self.fields)
            name = self.names.get(g.model_key, g.model_key)
            out.append({**explorer_record(g, js, name, flags), "pos": pos})
        return out


def _known(value: str, values: list[str], name: str) -> int:
    """The index of a filter's value among those the store holds; BadRequest if none."""
    try:
        return values.index(value)
    except ValueError:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise BadRequest(f"{name}: no {name} in this store is called {shown!r}") from None


def _verdict_row(r: tuple, harmful_prob: float | None) -> JudgmentRow:
    """A judgment with the fields the flags and measured_fields read; the rest left empty."""
    judge, args, harmful, refusal, coherent, truncated, parse_error = r
    return JudgmentRow(
        key="", generation_key="", judge=judge, judge_version="", judge_args=args,
        harmful=None if harmful is None else bool(harmful), harmful_prob=harmful_prob,
        refusal=refusal, coherent=None if coherent is None else bool(coherent), relevant=None,
        parse_error=bool(parse_error), raw="",
        truncated=None if truncated is None else bool(truncated),
    )  # fmt: skip
