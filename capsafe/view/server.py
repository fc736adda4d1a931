"""capsafe view's HTTP server: the explorer page, the run's report and a JSON API, read-only.

    GET /                 the explorer page (capsafe.view.page)
    GET /report.html      the experiment's report, as `capsafe report` last wrote it
    GET /api/filters      every value of each filter, and how many responses are stored
    GET /api/responses    a page of responses (the parameters: capsafe.view.query)

Any other path is a 404 and a bad parameter a 400, each with a one-line text message. No
response may be sniffed, cached or framed, and the page allows no script but its own. Bound
to a loopback address (the default), the server answers only requests that name a loopback
host, so a web page elsewhere cannot read it by pointing a domain of its own at 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from capsafe.report.explorer import CSP as REPORT_CSP
from capsafe.view.index import ExplorerIndex
from capsafe.view.page import CSP as PAGE_CSP
from capsafe.view.page import view_page
from capsafe.view.query import BadRequest, parse_query


class _Answer(Exception):
    """An error answer: its status and one line of text."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class ViewServer(ThreadingHTTPServer):
    """The server of one experiment folder's index; serve_forever() runs it."""

    daemon_threads = True  # a browser's open connection never holds up Ctrl-C

    def __init__(self, address: tuple[str, int], index: ExplorerIndex, report: Path, title: str):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.index = index
        self.report = report
        self.page = view_page(title).encode("utf-8")
        self.loopback = _is_loopback(address[0])
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in str(host) else host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "capsafe-view"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would bury the URL the user needs

    def _answer(self, head: bool) -> None:
        try:
            kind, body, csp = self._route()
            status = HTTPStatus.OK
        except BadRequest as err:
            status, kind, body, csp = HTTPStatus.BAD_REQUEST, "text/plain", _line(err), None
        except _Answer as err:
            status, kind, body, csp = err.status, "text/plain", _line(err), None
        except Exception:
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            self._send(status, "text/plain", b"capsafe view: internal error", None, head)
            raise  # a bug: the server prints its traceback
        self._send(status, kind, body, csp, head)

    def _route(self) -> tuple[str, bytes, str | None]:
        if self.server.loopback and not _is_loopback(self._host()):
            raise BadRequest("capsafe view answers requests to 127.0.0.1 or localhost only "
                             "(--host serves another address)")  # fmt: skip
        url = urlsplit(self.path)
        if url.path == "/":
            return "text/html", self.server.page, PAGE_CSP
        if url.path == "/report.html":
            if not self.server.report.is_file():
                raise _Answer(HTTPStatus.NOT_FOUND, f"no report yet: `capsafe report "
                              f"{self.server.report.parent}` writes it")  # fmt: skip
            return "text/html", self.server.report.read_bytes(), REPORT_CSP
        index = self.server.index
        if url.path == "/api/filters":
            if url.query:
                raise BadRequest("/api/filters takes no parameters")
            o = index.options
            data: dict[str, object] = {
                "checkpoint": o.checkpoints, "benchmark": o.benchmarks, "category": o.categories,
                "judge": o.judges, "total": o.total,
            }  # fmt: skip
            return "application/json", _json(data), None
        if url.path == "/api/responses":
            query = parse_query(parse_qs(url.query, keep_blank_values=True))
            page = index.page(query)
            data = {"rows": page.records, "matched": page.matched, "first": page.first,
                    "prev": page.prev, "next": page.next, "total": index.options.total,
                    "stale": index.stale()}  # fmt: skip
            return "application/json", _json(data), None
        raise _Answer(HTTPStatus.NOT_FOUND, f"no such page: {url.path[:80]}")

    def _host(self) -> str:
        try:
            return urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
        except ValueError:  # e.g. an unclosed "[" of an IPv6 address
            return ""

    def _send(
        self, status: HTTPStatus, kind: str, body: bytes, csp: str | None, head: bool
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Frame-Options", "DENY")
            if csp:
                self.send_header("Content-Security-Policy", csp)
            self.end_headers()
            if not head:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (a page left before its answer came)


def _line(err: Exception) -> bytes:
    return " ".join(str(err).split()).encode("utf-8")  # one line, whatever the message held


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
