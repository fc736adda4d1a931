"""Progress display for long steps: tqdm bars and one-line notes on stderr."""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", dynamic_ncols=True, file=sys.stderr)


def quiet_libraries() -> None:
    """Silence the progress bars of the libraries capsafe calls (model loading in
    transformers and the hub client, encoding in sentence-transformers), for -q."""
    import os

    # Read when those libraries draw a bar, so setting them now covers later imports too;
    # tqdm itself honours TQDM_DISABLE (tqdm >= 4.66).
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TQDM_DISABLE"] = "1"
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()


def say(enabled: bool, message: str) -> None:
    if enabled:
        print(f"[capsafe] {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """A line that must be seen, quiet or not (a failed run, a dropped input)."""
    print(f"[capsafe] WARNING: {message}", file=sys.stderr, flush=True)
