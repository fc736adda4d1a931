"""One writer per folder: an exclusive advisory lock that names the process holding it.

    with folder_lock(cfg.output_dir, "running the experiment"):
        ...   # a second process gets FolderBusyError at once, naming this one's pid

The lock is flock(2) on FOLDER/.lock, so it is released when the holder exits, however it
exits (kill -9 included): a stale lock file never blocks anyone. Readers (capsafe report)
take no lock. Without fcntl (Windows) nothing is locked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from capsafe.errors import UserError

LOCK_FILE = ".lock"


class FolderBusyError(UserError):
    """Another process holds the folder's lock."""


@contextmanager
def folder_lock(folder: Path, doing: str) -> Iterator[None]:
    """Hold FOLDER's exclusive lock while `doing` (words for the error a second process gets)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise FolderBusyError(
                f"{folder}: another capsafe process (pid {holder}) is {doing} here; wait for it "
                "to finish, or stop it (capsafe report may read the store meanwhile)"
            ) from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
