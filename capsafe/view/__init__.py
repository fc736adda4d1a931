"""capsafe view: every stored response, in the report's explorer, from a local web server.

The report holds a bounded sample of the responses (report.explorer_sample); a study's store
holds up to a million. `capsafe view DIR` serves the experiment's report and an explorer page
that pages through all of them with the report explorer's filters, reading the store
read-only (capsafe.view.index), on 127.0.0.1 unless told otherwise:

    capsafe view runs/organism-quickstart              # http://127.0.0.1:8000/
    capsafe view runs/organism-quickstart --port 0     # any free port; the URL is printed

    server = open_view(Path("runs/organism-quickstart"), port=0)
    server.serve_forever()      # in a thread of its own for tests; server.shutdown() stops it
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import TYPE_CHECKING

from capsafe.errors import UserError
from capsafe.view.server import ViewServer

if TYPE_CHECKING:
    from capsafe.store import Store


def open_view(folder: Path, host: str = "127.0.0.1", port: int = 0) -> ViewServer:
    """The server of the experiment in `folder`, listening (port 0: a free one) but not yet
    serving. A folder without a store, or an address it cannot listen on, is a UserError."""
    from capsafe.pipeline import REPORT_FILE, STORE_FILE
    from capsafe.store import Store
    from capsafe.view.index import ExplorerIndex

    db = folder / STORE_FILE
    if not db.is_file():
        raise UserError(f"{folder}: no {STORE_FILE} here (is it an experiment folder?)")
    store = Store(db, read_only=True)
    try:
        index = ExplorerIndex(store)
        return ViewServer((host, port), index, folder / REPORT_FILE, _title(store, folder))
    except OSError as err:
        store.close()
        if err.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} is in use: give another with --port (0: any free "
                            "one)") from None  # fmt: skip
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    except BaseException:
        store.close()
        raise


def _title(store: Store, folder: Path) -> str:
    """The experiment's name, as its saved config gives it, else the folder's."""
    try:
        name = json.loads(store.meta("config") or "null")["name"]
    except (ValueError, TypeError, KeyError):
        name = None
    return name if isinstance(name, str) and name else folder.resolve().name


__all__ = ["open_view", "ViewServer"]
