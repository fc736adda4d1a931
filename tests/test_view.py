"""capsafe view without a browser: its index pages through exactly what the report's explorer
would show (same records, same order, same filters), its API refuses bad requests in one
line, it never writes the store, and the command stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from capsafe.cli import main
from capsafe.errors import UserError
from capsafe.report.explorer import explorer_records
from capsafe.store import GenerationRow, Store
from capsafe.view import open_view
from capsafe.view.index import ExplorerIndex
from capsafe.view.query import MAX_LIMIT, BadRequest, Filters, Query, parse_query
from tests.helpers.report_rows import report_rows
from tests.helpers.view_store import write_rows

ROWS = report_rows()
RECORDS = explorer_records(ROWS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("view")
    with Store(folder / "capsafe.db") as store:
        write_rows(store, ROWS)
    return folder


@pytest.fixture(scope="module")
def index(folder: Path) -> Iterator[ExplorerIndex]:
    store = Store(folder / "capsafe.db", read_only=True)
    yield ExplorerIndex(store)
    store.close()


@pytest.fixture(scope="module")
def url(folder: Path) -> Iterator[str]:
    server = open_view(folder, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.url
    server.shutdown()
    server.server_close()
    server.index.store.close()


def _matches(r: dict, f: Filters) -> bool:
    """The report explorer's own filter (explorer_js.SCRIPT's matches), in Python."""
    return (
        f.checkpoint in (None, r["ck"])
        and f.benchmark in (None, r["b"])
        and f.category in (None, r["c"])
        and (f.judge is None or any(label == f.judge for label, _ in r["j"]))
        and (not f.disagree or r["d"])
        and (f.incoherent is None or r["i"] is f.incoherent)
    )


def _all(index: ExplorerIndex, f: Filters, limit: int = MAX_LIMIT) -> list[dict]:
    out, after = [], None
    while True:
        page = index.page(Query(f, after=after, limit=limit))
        out += page.records
        if page.next is None:
            return out
        after = page.next


FILTERS = [
    Filters(),
    Filters(benchmark="adv/harmful", disagree=True),
    Filters(checkpoint=RECORDS[-1]["ck"], incoherent=True, category="cat <b>x</b>"),
    Filters(judge="coh", incoherent=False),
    Filters(judge="wg", benchmark="arith/test"),
    Filters(benchmark="direct/harmful", disagree=True, incoherent=True),
]


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: repr(f)[8:60])
def test_pages_hold_what_the_report_explorer_shows(index: ExplorerIndex, f: Filters) -> None:
    want = [r for r in RECORDS if _matches(r, f)]
    got = _all(index, f, limit=7)
    assert [{k: v for k, v in r.items() if k != "pos"} for r in got] == want
    assert index.page(Query(f)).matched == len(want)
    assert f == Filters() or len(want) < len(RECORDS)


def test_options_are_the_report_explorers(index: ExplorerIndex) -> None:
    o = index.options
    assert o.total == len(RECORDS) == len(ROWS.generations)
    assert o.checkpoints == sorted({r["ck"] for r in RECORDS})
    assert o.benchmarks == sorted({r["b"] for r in RECORDS})
    assert o.categories == ["cat <b>x</b>"]
    assert o.judges == ["coh", "kw", "wg"]


def test_pages_walk_forward_and_back(index: ExplorerIndex) -> None:
    f = Filters(benchmark="adv/harmful")
    want = [r for r in RECORDS if _matches(r, f)]
    pages, after = [], None
    while True:
        page = index.page(Query(f, after=after, limit=25))
        pages.append(page)
        if page.next is None:
            break
        after = page.next
    assert [p.first for p in pages] == list(range(1, len(want) + 1, 25))
    assert pages[0].prev is None and pages[-1].next is None
    assert sum(len(p.records) for p in pages) == len(want) == pages[0].matched
    back = index.page(Query(f, before=pages[-1].prev, limit=25))
    assert back.records == pages[-2].records and back.first == pages[-2].first
    beyond = index.page(Query(f, after=10**9))
    assert (beyond.records, beyond.first, beyond.prev, beyond.next) == ([], 0, None, None)
    assert beyond.matched == len(want)


def test_unknown_filter_values_are_bad_requests(index: ExplorerIndex) -> None:
    for f, name in (
        (Filters(checkpoint="nope"), "checkpoint"),
        (Filters(judge="x"), "judge"),
        (Filters(benchmark="adv"), "benchmark"),
        (Filters(category="c"), "category"),
    ):
        with pytest.raises(BadRequest, match=f"^{name}: no {name} in this store"):
            index.page(Query(f))


@pytest.mark.parametrize(
    "query, message",
    [
        ({"colour": ["red"]}, "unknown parameter 'colour'"),
        ({"judge": ["a", "b"]}, "judge: given 2 times"),
        ({"limit": ["0"]}, "limit: expected a whole number from 1 to 200, got 0"),
        ({"limit": [str(MAX_LIMIT + 1)]}, "limit: expected a whole number from 1 to 200"),
        ({"limit": ["ten"]}, "limit: expected a whole number"),
        ({"after": ["-1"]}, "after: expected a whole number of at least 0, got '-1'"),
        ({"after": ["+1"]}, "after: expected a whole number"),
        ({"after": ["１"]}, "after: expected a whole number"),  # a full-width digit
        ({"before": ["0"]}, "before: expected a whole number of at least 1, got 0"),
        ({"after": ["1"], "before": ["9"]}, "give after .* or before"),
        ({"disagree": ["yes"]}, "disagree: expected '0' or '1', got 'yes'"),
        ({"incoherent": ["2"]}, "incoherent: expected '1' or '0', got '2'"),
    ],
)
def test_bad_queries(query: dict, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_query(query)


def test_query_defaults_and_blanks() -> None:
    q = parse_query({"benchmark": [""], "disagree": ["0"], "incoherent": [""], "after": ["5"]})
    assert q == Query(Filters(), after=5)
    assert parse_query({"incoherent": ["0"], "limit": ["200"]}).filters.incoherent is False


def _get(url: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_api_over_http(url: str) -> None:
    status, headers, body = _get(url + "api/filters")
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(body)["category"] == ["cat <b>x</b>"]
    status, _, body = _get(url + "api/responses?benchmark=adv%2Fharmful&disagree=1&limit=3")
    page = json.loads(body)
    want = [r for r in RECORDS if r["b"] == "adv/harmful" and r["d"]]
    assert status == 200 and page["matched"] == len(want) and page["first"] == 1
    assert [r["r"] for r in page["rows"]] == [r["r"] for r in want[:3]]
    assert page["prev"] is None and page["next"] == page["rows"][-1]["pos"]
    assert page["stale"] is False and page["total"] == len(RECORDS)
    status, _, body = _get(url + f"api/responses?after={page['next']}&benchmark=adv%2Fharmful"
                           "&disagree=1&limit=3")  # fmt: skip
    assert json.loads(body)["first"] == 4


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("api/responses?limit=0", 400, "limit: expected a whole number from 1 to 200, got 0"),
        ("api/responses?checkpoint=%3Cscript%3E", 400, "checkpoint: no checkpoint in this "
         "store is called '<script>'"),
        ("api/responses?x=1&x=2", 400, "unknown parameter 'x'"),
        ("api/filters?x=1", 400, "/api/filters takes no parameters"),
        ("api/nothing", 404, "no such page: /api/nothing"),
        ("capsafe.db", 404, "no such page: /capsafe.db"),
        ("../capsafe.db", 404, "no such page"),
        ("report.html", 404, "no report yet: `capsafe report"),
    ],
)  # fmt: skip
def test_errors_are_one_line(url: str, path: str, status: int, message: str) -> None:
    got, headers, body = _get(url + path)
    text = body.decode()
    assert (got, headers["Content-Type"]) == (status, "text/plain; charset=utf-8")
    assert text.startswith(message) and "\n" not in text


def test_page_and_report_carry_their_policy(url: str, folder: Path) -> None:
    status, headers, body = _get(url)
    assert status == 200 and b"<script>" in body and b"explorer-filters" in body
    assert "script-src 'sha256-" in headers["Content-Security-Policy"]
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    (folder / "report.html").write_text("<p>the report</p>", encoding="utf-8")
    try:
        status, headers, body = _get(url + "report.html")
    finally:
        (folder / "report.html").unlink()
    assert (status, body) == (200, b"<p>the report</p>")
    assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_other_hosts_are_refused(url: str) -> None:
    # A page elsewhere that points its own domain at 127.0.0.1 (DNS rebinding) gets nothing.
    status, _, body = _get(url + "api/filters", host="evil.example:80")
    assert status == 400 and body.startswith(b"capsafe view answers requests to 127.0.0.1")
    assert _get(url + "api/filters", host="[::1")[0] == 400
    assert _get(url + "api/filters", host="localhost")[0] == 200


def test_the_store_is_only_read(tmp_path: Path) -> None:
    with Store(tmp_path / "capsafe.db") as store:
        write_rows(store, ROWS)
    db = tmp_path / "capsafe.db"
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    server = open_view(tmp_path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for path in ("", "api/filters", "api/responses?judge=coh&after=3"):
            assert _get(server.url + path)[0] == 200
        with pytest.raises(Exception, match="readonly"):
            server.index.store.reader().execute("DELETE FROM generations")
        assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
        wal = tmp_path / "capsafe.db-wal"
        assert not wal.exists() or wal.stat().st_size == 0  # nothing written beside it either
        assert not server.index.stale()
        with Store(db) as writer:  # a run goes on writing meanwhile
            g = ROWS.generations[0]
            writer.put_generations([GenerationRow(**{**g.__dict__, "key": "new"})])
        assert server.index.stale()
        assert json.loads(_get(server.url + "api/responses")[2])["stale"] is True
    finally:
        server.shutdown()
        server.server_close()
        server.index.store.close()


def test_a_folder_without_a_store_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["view", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == f"capsafe: error: {tmp_path}: no capsafe.db here (is it an experiment folder?)\n"
    (tmp_path / "capsafe.db").write_bytes(b"not a database, just bytes" * 100)
    assert main(["view", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("capsafe: error: ") and "not a capsafe store" in err
    assert err.count("\n") == 1
    assert main(["view", str(tmp_path), "--port", "70000"]) == 2
    assert "--port 70000: expected 0" in capsys.readouterr().err


def test_a_port_in_use_is_one_line(folder: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["view", str(folder), "--port", str(port)]) == 2
    assert f"port {port} is in use" in capsys.readouterr().err


def test_read_only_store_refuses_other_schemas(tmp_path: Path) -> None:
    with Store(tmp_path / "capsafe.db") as store:
        store.set_meta("schema_version", "3")
    with pytest.raises(UserError, match="schema version 3, this capsafe reads .*report DIR"):
        Store(tmp_path / "capsafe.db", read_only=True)


def test_ctrl_c_stops_the_command(folder: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Ctrl-C as a terminal delivers it: a test run started in the background by a script
    # ignores SIGINT, and a child would inherit that and never see the signal.
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsafe.cli", "view", str(folder), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(f"capsafe: view: {len(RECORDS)} responses of {folder} at http")
        url = line.split(" at ")[1].split()[0]
        assert _get(url + "api/filters")[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out == "capsafe: view: stopped\n" and err == ""
