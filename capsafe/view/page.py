"""capsafe view's one page: the report's explorer (its filter form, its cards and its URL-hash
filters, capsafe.report.explorer_js.SHARED), fed page by page from the server's JSON API
instead of a data block. Model text reaches the page through textContent only, and the
Content-Security-Policy allows no script but this one (by its hash) and no request but to
the server itself.

    html = view_page("organism-quickstart")
"""

from __future__ import annotations

import base64
import hashlib

from capsafe.report.explorer import CONTENT_WARNING, filter_form
from capsafe.report.explorer_js import SHARED
from capsafe.report.markup import esc
from capsafe.report.style import CSS

SCRIPT = (
    r"""
// capsafe view: the response explorer over every stored response, a page at a time.
(function () {
  "use strict";
"""
    + SHARED
    + r"""
  var PAGE = 50;
  var params = {ck: "checkpoint", b: "benchmark", c: "category", j: "judge"};
  var root = document.documentElement;
  var cursors = {prev: null, next: null};
  var total = 0;
  var loads = 0;
  var latest = 0;

  function num(n) { return Number(n).toLocaleString("en-US"); }
  function get(url) {
    return fetch(url).then(function (r) {
      if (!r.ok) return r.text().then(function (text) { throw new Error(text); });
      return r.json();
    });
  }
  function filterQuery() {
    var f = formFilters();
    var q = new URLSearchParams();
    keys.forEach(function (k) { if (f[k]) q.set(params[k], f[k]); });
    if (f.d) q.set("disagree", "1");
    if (f.i) q.set("incoherent", f.i);
    return q;
  }
  function show(p) {
    var list = document.getElementById("explorer-list");
    list.replaceChildren.apply(list, p.rows.map(card));
    var last = p.first + p.rows.length - 1;
    document.getElementById("explorer-count").textContent = p.matched === 0
      ? "No stored response matches (" + num(total) + " stored)."
      : "Responses " + num(p.first) + "–" + num(last) + " of the " + num(p.matched) +
        " that match, of " + num(total) + " stored.";
    document.getElementById("view-stale").hidden = !p.stale;
    cursors = {prev: p.prev, next: p.next};
    ["view-prev", "view-prev-2"].forEach(function (id) {
      document.getElementById(id).disabled = p.prev === null;
    });
    ["view-next", "view-next-2"].forEach(function (id) {
      document.getElementById(id).disabled = p.next === null;
    });
    root.setAttribute("data-view-matches", String(p.matched));
    root.setAttribute("data-view-first", String(p.first));
    root.setAttribute("data-view-rows", String(p.rows.length));
    if (p.rows.length && !root.hasAttribute("data-first-rows-ms")) {
      // From the navigation's start to the first responses on screen (the test reads it).
      root.setAttribute("data-first-rows-ms", String(Math.round(performance.now())));
    }
  }
  function load(cursor) {
    var q = filterQuery();
    var mine = ++latest;
    if (cursor) Object.keys(cursor).forEach(function (k) { q.set(k, String(cursor[k])); });
    q.set("limit", String(PAGE));
    return get("/api/responses?" + q).then(function (p) {
      if (mine !== latest) return;  // a later request replaced this one
      show(p);
      root.setAttribute("data-view-loads", String(++loads));
    }).catch(function (e) {
      document.getElementById("explorer-count").textContent = "capsafe view: " + e.message;
      root.setAttribute("data-view-error", e.message);
      root.setAttribute("data-view-loads", String(++loads));
    });
  }
  function keepInHash() {
    history.replaceState(null, "", "#f:" + filterQuery());
  }
  get("/api/filters").then(function (o) {
    keys.forEach(function (k) { fillSelect(k, o[params[k]]); });
    total = o.total;
    fromHash();
    document.getElementById("explorer-filters").addEventListener("change", function () {
      keepInHash();
      load();
    });
    window.addEventListener("hashchange", function () { fromHash(); load(); });
    [["view-prev", "view-prev-2"], ["view-next", "view-next-2"]].forEach(function (ids, n) {
      ids.forEach(function (id) {
        document.getElementById(id).addEventListener("click", function () {
          load(n ? {after: cursors.next} : {before: cursors.prev});
        });
      });
    });
    root.setAttribute("data-view", "ready");
    return load();
  }).catch(function (e) {
    document.getElementById("explorer-count").textContent = "capsafe view: " + e.message;
    root.setAttribute("data-view-error", e.message);
  });
})();
"""
)
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; script-src '{SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def _pager(suffix: str) -> str:
    return (
        f"<p class='filters'><button type='button' id='view-prev{suffix}' disabled>previous "
        f"page</button><button type='button' id='view-next{suffix}' disabled>next page</button></p>"
    )


def view_page(title: str) -> str:
    """The explorer page of capsafe view, for the experiment `title`."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"  # no request for /favicon.ico
        f"<title>{esc(title)} — capsafe view</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p class='byline'>capsafe view · every stored response, "
        "read from the experiment's store · <a href='/report.html'>the report</a></p></header>"
        "<main><section id='explorer'><h2>Response explorer</h2>"
        f"{CONTENT_WARNING}{filter_form()}"
        "<p id='explorer-count' class='muted'>The explorer needs JavaScript.</p>"
        "<p id='view-stale' class='warn' hidden>The store has changed since capsafe view read "
        "it; restart capsafe view to see the new responses.</p>"
        f"{_pager('')}<div id='explorer-list'></div>{_pager('-2')}"
        f"<script>{SCRIPT}</script></section></main></body></html>\n"
    )
