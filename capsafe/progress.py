"""Progress display for long steps: tqdm bars and one-line notes on stderr."""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", dynamic_ncols=True, file=sys.stderr)


def say(enabled: bool, message: str) -> None:
    if enabled:
        print(f"[capsafe] {message}", file=sys.stderr, flush=True)
