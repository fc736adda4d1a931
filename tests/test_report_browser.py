"""The report in headless Chromium: the explorer's script runs without console errors, its
filters (set from the URL hash) select the right responses, and injected markup never runs.

Each test loads the page once with `chromium --headless --dump-dom` (about two seconds);
console messages come back on stderr as INFO:CONSOLE lines. Skipped without chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from capsafe.report.explorer import explorer_records
from capsafe.report.html import render_report
from tests.helpers.report_rows import report_rows

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
if BROWSER is None and os.environ.get("CI") == "true":
    # CI must run what it claims: `bash scripts/setup.sh --tests` installs chromium.
    raise RuntimeError("CI=true but chromium is not installed: the browser tests cannot run")
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="chromium is not installed (bash scripts/setup.sh --tests)"
)


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.title = ""
        self.scripts = 0
        self.injected: list[tuple[str, dict[str, str | None]]] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.root = a
        self._in_title = tag == "title"
        self.scripts += tag == "script"
        if any(k.startswith("on") for k in a) or (tag == "img" and a.get("src") == "x"):
            self.injected.append((tag, a))

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    rows = report_rows()
    page = render_report(rows, config=None, title="browser", generated_at="t", capsafe_version="0")
    path = tmp_path_factory.mktemp("browser") / "report.html"
    path.write_text(page, encoding="utf-8")
    return path, explorer_records(rows)


def _load(path: Path, hash_: str = "") -> tuple[_Dom, list[str]]:
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=3000", "--dump-dom", path.as_uri() + hash_],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    dom = _Dom()
    dom.feed(done.stdout)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return dom, console


def _assert_safe(dom: _Dom, console: list[str]) -> None:
    assert console == []  # no errors, no CSP refusals, nothing logged at all
    assert dom.root.get("data-explorer") == "ready"  # the script ran to its end
    assert "data-pwned" not in dom.root
    assert dom.title == "browser — capsafe report"
    assert dom.injected == []
    assert dom.scripts == 2  # the data block and the explorer: no injected script element


def test_explorer_runs_and_shows_every_response(report) -> None:
    path, records = report
    dom, console = _load(path)
    _assert_safe(dom, console)
    assert dom.root.get("data-explorer-matches") == str(len(records))
    assert len(records) == 5 * (8 + 2 * 24)


def test_filters_from_the_url_hash(report) -> None:
    path, records = report
    want = [r for r in records if r["b"] == "adv/harmful" and r["d"]]
    assert 0 < len(want) < len(records)
    dom, console = _load(path, "#f:benchmark=adv/harmful&disagree=1")
    _assert_safe(dom, console)
    assert dom.root.get("data-explorer-matches") == str(len(want))

    ck = records[-1]["ck"]
    want = [r for r in records if r["ck"] == ck and r["i"] is True and r["c"] == "cat <b>x</b>"]
    assert want
    dom, console = _load(
        path,
        "#f:" + "&".join(
            f"{k}={v}" for k, v in (("checkpoint", ck), ("incoherent", "1"),
                                    ("category", "cat <b>x</b>"), ("judge", "coh"))
        ).replace(" ", "%20").replace("<", "%3C").replace(">", "%3E"),
    )  # fmt: skip
    _assert_safe(dom, console)
    assert dom.root.get("data-explorer-matches") == str(len(want))
