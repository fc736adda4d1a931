"""capsafe view in headless Chromium, over a store of 100,000 responses: the first page is on
screen within 2 s, a filter shows exactly the rows SQL selects, paging walks them, and
injected markup in a response is shown as text and never runs.

Chromium runs in real time, driven over the DevTools protocol (tests/helpers/cdp.py), so the
page's own clock can time it. Skipped without chromium.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from capsafe.view import ViewServer, open_view
from tests.helpers.cdp import BROWSER, Browser
from tests.helpers.report_rows import ATTACKS
from tests.helpers.view_store import big_store

pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="chromium is not installed (bash scripts/setup.sh --tests)"
)
ROOT = "document.documentElement"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewServer]:
    folder = tmp_path_factory.mktemp("view-big")
    big_store(folder / "capsafe.db").close()  # about 5 s on one core
    server = open_view(folder, port=0)  # reads the store once: about 2 s
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()
    server.index.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert BROWSER is not None
    with Browser(BROWSER) as b:
        yield b


@pytest.fixture(scope="module")
def db(server: ViewServer) -> Iterator[sqlite3.Connection]:
    """A connection of the test's own, to say which rows a filter must show."""
    conn = sqlite3.connect(f"file:{server.index.store.path}?mode=ro", uri=True)
    yield conn
    conn.close()


def _names(server: ViewServer) -> dict[str, str]:
    return server.index.names


def _expected(server: ViewServer, db: sqlite3.Connection, where: str, args: tuple) -> list[str]:
    """The responses SQL selects, in the explorer's order (checkpoint name, then key)."""
    names = _names(server)
    rows = db.execute(f"SELECT model_key, key, response FROM generations WHERE {where}", args)
    return [r for _, _, r in sorted((names[m], k, r) for m, k, r in rows)]


def _shown(browser: Browser) -> list[str]:
    return browser.eval(
        "Array.from(document.querySelectorAll('#explorer-list pre.response'))"
        ".map(function (e) { return e.textContent; })"
    )


def _loads(browser: Browser) -> int:
    return int(browser.eval(f"{ROOT}.getAttribute('data-view-loads') || '0'"))


def _then(browser: Browser, action: str) -> None:
    """Run `action` and wait for the page it asks for to be drawn."""
    before = _loads(browser)
    browser.eval(action)
    browser.wait(f"Number({ROOT}.getAttribute('data-view-loads')) > {before}")


def _attr(browser: Browser, name: str) -> str | None:
    return browser.eval(f"{ROOT}.getAttribute('{name}')")


@pytest.fixture(scope="module")
def first_page(server: ViewServer, browser: Browser) -> None:
    browser.open(server.url)
    browser.wait(f"{ROOT}.getAttribute('data-view-loads') === '1'")


def test_first_page_in_under_2_s(server, browser, db, first_page) -> None:
    # capsafe's tests never time its code, with this one exception: issue 16 asks for "the
    # first page in under 2 s" on a large store, so this test checks the promise, with room to
    # spare (it takes about 0.2 s): from the navigation's start to the first rows on screen,
    # by the page's own clock, in a browser running in real time.
    assert int(_attr(browser, "data-first-rows-ms") or 10**9) < 2000
    assert _shown(browser) == _expected(server, db, "1", ())[:50]
    count = browser.eval("document.getElementById('explorer-count').textContent")
    assert count == "Responses 1–50 of the 100,000 that match, of 100,000 stored."
    assert browser.console == []  # no error, no refused script or request


def test_injected_markup_is_inert(server, browser, first_page) -> None:
    shown = _shown(browser)
    assert sum(any(a in text for a in ATTACKS) for text in shown) == 5  # every tenth, as text
    assert _attr(browser, "data-pwned") is None
    assert browser.eval("document.title") == f"{server.index.store.path.parent.name} — capsafe view"
    assert browser.eval("document.querySelectorAll('script').length") == 1  # the page's own
    assert browser.eval("document.querySelectorAll('img').length") == 0
    dom = _Attributes()
    dom.feed(browser.eval("document.documentElement.outerHTML"))
    assert dom.handlers == []
    assert browser.console == []


def test_filters_show_exactly_what_sql_selects(server, browser, db, first_page) -> None:
    checkpoint = sorted(_names(server).values())[4]
    model = next(k for k, n in _names(server).items() if n == checkpoint)
    _then(browser, f"location.hash = '#f:checkpoint={quote(checkpoint)}&benchmark=adv%2Fharmful"
                   "&category=cat3'")  # fmt: skip
    want = _expected(server, db, "model_key = ? AND prompt_set = ? AND category = ?",
                     (model, "adv/harmful", "cat3"))  # fmt: skip
    assert len(want) == 500
    assert _attr(browser, "data-view-matches") == "500" and _shown(browser) == want[:50]
    # The form, as a reader would use it: the coherence judge's incoherent responses.
    _then(browser, "location.hash = '#f:judge=coh'")
    _then(browser, "var s = document.getElementById('flt-i'); s.value = '1';"
                   "s.dispatchEvent(new Event('change', {bubbles: true}))")  # fmt: skip
    incoherent = "key IN (SELECT generation_key FROM judgments WHERE coherent = 0)"
    want = _expected(server, db, incoherent, ())
    assert _attr(browser, "data-view-matches") == str(len(want)) and len(want) > 1000
    assert _shown(browser) == want[:50]
    assert browser.eval("location.hash") == "#f:judge=coh&incoherent=1"  # a link to this view
    assert browser.console == []


def test_paging(server, browser, db, first_page) -> None:
    _then(browser, "location.hash = '#f:benchmark=xs%2Fbenign&category='")
    want = _expected(server, db, "prompt_set = ?", ("xs/benign",))
    assert _attr(browser, "data-view-first") == "1"
    assert browser.eval("document.getElementById('view-prev').disabled") is True
    _then(browser, "document.getElementById('view-next').click()")
    _then(browser, "document.getElementById('view-next-2').click()")
    assert _attr(browser, "data-view-first") == "101" and _shown(browser) == want[100:150]
    _then(browser, "document.getElementById('view-prev').click()")
    assert _attr(browser, "data-view-first") == "51" and _shown(browser) == want[50:100]
    # The last page: checkpoint and benchmark, 2,500 responses, one category: 500; ten pages.
    checkpoint = sorted(_names(server).values())[-1]
    _then(browser, f"location.hash = '#f:checkpoint={quote(checkpoint)}&benchmark="
                   "direct%2Fharmful&category=cat0'")  # fmt: skip
    for _ in range(9):
        _then(browser, "document.getElementById('view-next').click()")
    assert _attr(browser, "data-view-first") == "451" and _attr(browser, "data-view-rows") == "50"
    assert browser.eval("document.getElementById('view-next').disabled") is True
    assert browser.console == []


class _Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.handlers: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [(tag, k) for k, _ in attrs if k.startswith("on")]
