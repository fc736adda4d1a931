"""The driver's one view of a Ray run: units done, running and queued per step.

On a terminal the line is redrawn in place; elsewhere (a log file, CI) a line is printed
when the counts change, at most every `every` seconds, and at the end.
"""

from __future__ import annotations

import sys
import time


class ClusterProgress:
    def __init__(self, enabled: bool, every: float = 5.0) -> None:
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.every = 1.0 if self.tty else every
        self.step_of: dict[str, str] = {}
        self.state: dict[str, str] = {}  # unit -> queued | running | done | failed
        self.steps: list[str] = []  # in the order first seen
        self.last = ""
        self.shown_at = 0.0

    def queued(self, step: str, unit: str) -> None:
        if step not in self.steps:
            self.steps.append(step)
        self.step_of[unit] = step
        self.state[unit] = "queued"

    def running(self, unit: str) -> None:
        if unit in self.state:
            self.state[unit] = "running"

    def done(self, unit: str) -> None:
        self.state[unit] = "done"

    def failed(self, unit: str) -> None:
        self.state[unit] = "failed"

    def counts(self) -> dict[str, dict[str, int]]:
        out = {s: {"done": 0, "running": 0, "queued": 0, "failed": 0} for s in self.steps}
        for unit, state in self.state.items():
            out[self.step_of[unit]][state] += 1
        return out

    def line(self) -> str:
        parts = []
        for step, c in self.counts().items():
            total = sum(c.values())
            text = f"{step} {c['done']}/{total} done, {c['running']} running, {c['queued']} queued"
            parts.append(text + (f", {c['failed']} FAILED" if c["failed"] else ""))
        return "[capsafe] ray: " + " | ".join(parts)

    def show(self, force: bool = False) -> None:
        if not self.enabled or not self.steps:
            return
        now = time.monotonic()
        text = self.line()
        if text == self.last or (not force and now - self.shown_at < self.every):
            return
        self.last, self.shown_at = text, now
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        self.show(force=True)
        if self.enabled and self.tty and self.last:
            sys.stderr.write("\n")
            sys.stderr.flush()
