"""Drive headless Chromium in real time over the DevTools protocol, on a pipe (no websocket
library): navigate, evaluate JavaScript, wait for the page to say it is done, and collect
what it logged. `--dump-dom` with a virtual time budget cannot time a page that fetches, as
virtual time runs faster than the server answers; this can.

    with Browser(BROWSER) as b:
        b.open("http://127.0.0.1:8000/")
        b.wait("document.documentElement.getAttribute('data-view-loads') === '1'")
        b.eval("document.title"), b.console
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from typing import Any

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, binary: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4. The child's ends are
        # copied above 10 first, so moving them onto 3 and 4 cannot overwrite one another.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)]
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def fds() -> None:
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self._proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for fd in ends:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.console: list[str] = []  # console messages, exceptions and CSP reports
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self._call(f"{domain}.enable", session=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._call("Browser.close")
        except (OSError, RuntimeError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)

    def open(self, url: str) -> None:
        self._call("Page.navigate", {"url": url}, session=True)

    def eval(self, expression: str) -> Any:
        result = self._call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, condition: str, timeout: float = 30.0) -> None:
        """Until the JavaScript `condition` is true (polled every 20 ms)."""
        deadline = time.monotonic() + timeout
        # False while the page is still being replaced (no document yet, or no context).
        probe = f"(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        while not self._try(probe):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{condition} still false after {timeout} s: {self.console}")
            time.sleep(0.02)

    def _try(self, expression: str) -> bool:
        try:
            return bool(self.eval(expression))
        except RuntimeError:  # the context went with a navigation
            return False

    def _call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _event(self, event: dict) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            self.console.append(" ".join(str(a.get("value", a)) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            self.console.append(str(params["exceptionDetails"]))
        elif method == "Log.entryAdded":
            self.console.append(params["entry"].get("text", ""))
