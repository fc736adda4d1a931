"""The experiment report: one self-contained HTML file built from the store alone.

    capsafe report runs/organism        # writes runs/organism/report.html

write_report is the only function here that touches files; figures and HTML are pure
(capsafe.report.figures, capsafe.report.html). Each report carries a stamp of what it was
rendered from (the store's revision, the saved config, the settings, capsafe's version),
so a rerun that wrote nothing keeps the report it has instead of rendering it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from capsafe import __version__
from capsafe.analysis.rows import ExperimentRows
from capsafe.config import report_spec
from capsafe.store import Store


def write_report(
    store: Store, out_path: Path, overrides: list[str] | None = None, *, keep_current: bool = False
) -> Path:
    """Render the store's experiment to `out_path` (written atomically) and return the path.

    overrides: `report.KEY=VALUE` settings that replace the saved config's (ConfigError if
    bad), e.g. ["report.capability_target={accuracy: 0.5}"].
    keep_current: leave `out_path` alone when it was rendered from exactly this store
    content, config, settings and capsafe version (its stamp says so).
    """
    from capsafe.report.html import render_report  # matplotlib loads only when a report is made

    out_path = Path(out_path)
    stamp = report_stamp(store, overrides)
    if keep_current and read_stamp(out_path) == stamp:
        return out_path
    config = _saved_config(store)
    spec, spec_note = report_spec(config, overrides)
    title = str(config.get("name")) if config and config.get("name") else store.path.parent.name
    page = render_report(
        ExperimentRows.from_store(store),
        config=config,
        spec=spec,
        spec_note=spec_note,
        title=title,
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        capsafe_version=__version__,
        versions=store.versions(),
        stamp=stamp,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a reader never sees half a report.
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make the report private to its writer
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def report_stamp(store: Store, overrides: list[str] | None = None) -> str:
    """sha256 of everything a report is rendered from: the store's revision (it moves on
    with every write of result rows), the saved config (the report settings are part of
    it), the overrides and capsafe's version."""
    payload = [__version__, store.revision(), store.meta("config"), list(overrides or [])]
    return hashlib.sha256(json.dumps(payload).encode("utf-8")).hexdigest()


_STAMP = re.compile(r"<meta name='capsafe-stamp' content='([0-9a-f]{64})'>")


def read_stamp(report: Path) -> str | None:
    """The stamp in the head of a report capsafe wrote (None: no such report)."""
    try:
        with open(report, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return None
    found = _STAMP.search(head)
    return found.group(1) if found else None


def _saved_config(store: Store) -> dict[str, Any] | None:
    raw = store.meta("config")
    if raw is None:
        return None
    try:
        config = json.loads(raw)
    except ValueError:
        return {"unparseable_config_text": raw}
    if config is None:
        return None
    return config if isinstance(config, dict) else {"config": config}


__all__ = ["write_report"]
