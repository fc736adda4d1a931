"""HTML building blocks of the report: escaping, number formats and tables.

Every piece of text that reaches the page goes through `esc` (html.escape with
quote=True), so model output and prompt text show as text, in element bodies and in
attributes alike. A Cell holds markup that was built from escaped pieces only.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import NamedTuple

from capsafe.analysis.labels import recipe_of, setting_label
from capsafe.store import RunRow


def esc(value: object) -> str:
    """Text made safe for an element body or a quoted attribute value."""
    return html.escape(str(value), quote=True)


def pct(x: float | None) -> str:
    """A share (0-1) as a percentage with one decimal; an en dash when undefined."""
    if x is None or math.isnan(x):
        return "–"
    return f"{100 * x:.1f}%"


def pct_range(low: float, high: float) -> str:
    """An interval of shares as "23.7–76.3%"."""
    if math.isnan(low) or math.isnan(high):
        return "–"
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def pp(x: float) -> str:
    """A difference or spread of shares in percentage points, one decimal."""
    return "–" if math.isnan(x) else f"{100 * x:.1f} pp"


def short(key: str | None, n: int = 12) -> str:
    """A long digest shortened for display (the full value stays in the title attribute)."""
    if key is None:
        return "–"
    return key if len(key) <= n + 1 else key[:n] + "…"


def abbr(key: str | None, n: int = 12) -> str:
    """A shortened digest as markup that shows the full value on hover."""
    if key is None:
        return "–"
    return f'<span class="mono" title="{esc(key)}">{esc(short(key, n))}</span>'


class Cell(NamedTuple):
    markup: str  # built from escaped pieces only
    numeric: bool = False


def text(value: object) -> Cell:
    return Cell(esc(value))


def number(markup: str) -> Cell:
    return Cell(markup, numeric=True)


def raw(markup: str) -> Cell:
    return Cell(markup)


def mono(value: object) -> Cell:
    return Cell(f"<span class='mono'>{esc(value)}</span>")


def json_cell(json_text: str, summary: str = "") -> Cell:
    """Stored canonical JSON pretty-printed (escaped); folded under `summary` if given."""
    try:
        pretty = json.dumps(json.loads(json_text), indent=1, ensure_ascii=False, sort_keys=True)
    except ValueError:
        pretty = json_text
    pre = f"<pre class='cell'>{esc(pretty)}</pre>"
    return Cell(f"<details><summary>{esc(summary)}</summary>{pre}</details>" if summary else pre)


def table(
    headers: Sequence[Cell], rows: Sequence[Sequence[Cell]], *, caption: str = "", cls: str = ""
) -> str:
    """A <table> with right-aligned numeric columns; `caption` is plain text."""

    def cells(tag: str, row: Sequence[Cell]) -> str:
        return "".join(
            f'<{tag} class="num">{c.markup}</{tag}>' if c.numeric else f"<{tag}>{c.markup}</{tag}>"
            for c in row
        )

    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    head = f"<thead><tr>{cells('th', headers)}</tr></thead>"
    body = "".join(f"<tr>{cells('td', r)}</tr>" for r in rows)
    klass = f' class="{esc(cls)}"' if cls else ""
    return f'<div class="scroll"><table{klass}>{cap}{head}<tbody>{body}</tbody></table></div>'


def definition_list(items: Sequence[tuple[str, str]]) -> str:
    """A <dl> of (plain-text term, markup description) pairs."""
    body = "".join(f"<dt>{esc(term)}</dt><dd>{desc}</dd>" for term, desc in items)
    return f"<dl>{body}</dl>"


def setting_text(run: RunRow) -> str:
    """A run's recipe and hyperparameter setting as the analysis labels them, or its raw JSON
    if it cannot."""
    try:
        return setting_label(run.hparams, recipe_of(run.settings)[0])
    except (KeyError, ValueError, TypeError):
        return run.hparams
