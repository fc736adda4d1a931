"""The response explorer's script (see capsafe.report.explorer), kept as a string so it ships
with the package without package-data settings; its hash goes in the page's CSP.

SHARED is the part `capsafe view` runs too (capsafe.view.page): how a response is drawn, and
how the filter form is read from and set by the URL hash.
"""

SHARED = r"""
  // Model text is untrusted: it only ever reaches the page through textContent, never
  // innerHTML. Filters: the form, or the URL (#f:judge=x&disagree=1).
  var keys = ["ck", "b", "c", "j"];
  var hashNames = {checkpoint: "ck", benchmark: "b", category: "c", judge: "j"};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fillSelect(key, values) {
    var select = document.getElementById("flt-" + key);
    values.forEach(function (v) {
      var o = el("option", "", v);
      o.value = v;
      select.appendChild(o);
    });
  }
  function fromHash() {
    if (location.hash.indexOf("#f:") !== 0) return false;
    document.getElementById("explorer-filters").reset();  // a link sets exactly its filters
    new URLSearchParams(location.hash.slice(3)).forEach(function (v, k) {
      if (k === "disagree") document.getElementById("flt-d").checked = v === "1";
      else if (k === "incoherent") document.getElementById("flt-i").value = v;
      else if (hashNames[k]) document.getElementById("flt-" + hashNames[k]).value = v;
    });
    return true;
  }
  function formFilters() {
    var f = {d: document.getElementById("flt-d").checked,
             i: document.getElementById("flt-i").value};
    keys.forEach(function (k) { f[k] = document.getElementById("flt-" + k).value; });
    return f;
  }
  function card(r) {
    var box = el("div", "example");
    var head = [r.k, r.b, r.c && "category " + r.c, "format " + r.f, "sample seed " + r.s];
    box.appendChild(el("div", "ex-head", r.ck + " · " + head.filter(Boolean).join(" · ")));
    box.appendChild(el("div", "label", "prompt"));
    box.appendChild(el("pre", "prompt", r.p));
    box.appendChild(el("div", "label", "response"));
    box.appendChild(el("pre", "response", r.r));
    var list = el("ul", "verdicts");
    r.j.forEach(function (p) { list.appendChild(el("li", "", p[0] + ": " + p[1])); });
    if (r.d) list.appendChild(el("li", "perr", "judges disagree"));
    if (r.x) list.appendChild(el("li", "perr", "cut at the token limit: the judges saw it so"));
    box.appendChild(list);
    return box;
  }
"""

SCRIPT = (
    r"""
// capsafe report: the response explorer, over the sample of responses the report holds.
(function () {
  "use strict";
"""
    + SHARED
    + r"""
  // The data holds each repeated string once, in tables the records index (explorer_data).
  var data = JSON.parse(document.getElementById("explorer-data").textContent);
  var t = data.t;
  var records = data.r.map(function (r) {
    return {ck: t.ck[r.ck], b: t.b[r.b], c: t.c[r.c], k: t.k[r.k], f: t.f[r.f], s: r.s,
            p: t.p[r.p], r: r.r, d: r.d, i: r.i, x: r.x,
            j: r.j.map(function (p) { return [t.jl[p[0]], t.jv[p[1]]]; })};
  });
  var PAGE = 50;
  var shown = PAGE;

  function values(key) {
    var seen = {};
    records.forEach(function (r) {
      if (key === "j") r.j.forEach(function (p) { seen[p[0]] = 1; });
      else if (r[key] !== "") seen[r[key]] = 1;
    });
    return Object.keys(seen).sort();
  }
  keys.forEach(function (key) { fillSelect(key, values(key)); });
  function matches(r, f) {
    if (f.ck && r.ck !== f.ck) return false;
    if (f.b && r.b !== f.b) return false;
    if (f.c && r.c !== f.c) return false;
    if (f.j && !r.j.some(function (p) { return p[0] === f.j; })) return false;
    if (f.d && !r.d) return false;
    if (f.i === "1" && r.i !== true) return false;
    if (f.i === "0" && r.i !== false) return false;
    return true;
  }
  function render() {
    var f = formFilters();
    var hits = records.filter(function (r) { return matches(r, f); });
    var list = document.getElementById("explorer-list");
    list.replaceChildren.apply(list, hits.slice(0, shown).map(card));
    document.getElementById("explorer-count").textContent =
      hits.length + " of the " + records.length + " responses in this report match" +
      (hits.length > shown ? " (first " + shown + " shown)" : "");
    document.getElementById("explorer-more").hidden = hits.length <= shown;
    document.documentElement.setAttribute("data-explorer-matches", String(hits.length));
  }
  function hashChanged() {
    if (fromHash()) document.getElementById("explorer").scrollIntoView();
  }
  document.getElementById("explorer-filters").addEventListener("change", function () {
    shown = PAGE;
    render();
  });
  document.getElementById("explorer-more").addEventListener("click", function () {
    shown += PAGE;
    render();
  });
  window.addEventListener("hashchange", function () { hashChanged(); render(); });
  hashChanged();
  render();
  document.documentElement.setAttribute("data-explorer", "ready");
})();
"""
)
