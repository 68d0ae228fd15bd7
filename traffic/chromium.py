"""Debian's headless Chromium, driven over the DevTools protocol as a user would drive it
(load, hover, click, back), with its own network log as the record of what it requested."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from contract.errors import NextraceError

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
_PAGE_REPLACED = ("Inspected target navigated or closed", "Execution context was destroyed")


class ChromiumError(NextraceError):
    """Chromium could not be started or driven; the message says what failed."""


@dataclass(frozen=True)
class LoggedRequest:
    """A request of the page: its URL and request headers (lower-case names). Those answered
    in full are listed by ``logged_requests`` (from the network log) and ``Chromium.answered``."""

    url: str
    headers: dict[str, str]


class Chromium:
    """One page of a headless Chromium; ``with`` starts it and closes it cleanly, so that its
    network log (``net_log``) is complete."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.net_log = workdir / "net-log.json"
        self._process: subprocess.Popen[str] | None = None
        self._page: ClientConnection | None = None
        self._ids = 0
        self._in_flight: dict[str, str] = {}  # the page's requests not yet finished: their URLs
        self._sent: dict[str, LoggedRequest] = {}  # the same, with their request headers
        self._answered: list[LoggedRequest] = []  # the page's requests finished, in that order
        self.console_errors: list[str] = []  # errors the page logged or threw

    def __enter__(self) -> Chromium:
        self._process = subprocess.Popen(
            [
                "chromium",
                *FLAGS,
                "--remote-debugging-port=0",
                f"--user-data-dir={self.workdir / 'profile'}",
                f"--log-net-log={self.net_log}",
                "about:blank",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        if self._process.stderr is None:
            raise ChromiumError("Chromium started without its error stream")
        deadline = time.monotonic() + 60
        browser_url = ""
        while not browser_url:
            if time.monotonic() > deadline:
                raise ChromiumError("Chromium did not open its DevTools port within 60 s")
            line = self._process.stderr.readline()
            if not line and self._process.poll() is not None:
                raise ChromiumError(f"Chromium exited ({self._process.returncode})")
            if found := _LISTENING.search(line):
                browser_url = found.group(1)
        port = browser_url.split(":")[2].split("/")[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self._page = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.send("Network.enable")
        self.send("Runtime.enable")
        self.send("Log.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        # The browser may close the socket before it answers.
        with contextlib.suppress(Exception):
            if self._page is not None:
                self.send("Browser.close")
        if self._process is not None:
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one DevTools command and return its result; the network events that arrive
        meanwhile keep count of the requests in flight."""
        if self._page is None:
            raise ChromiumError("Chromium is not running: use it in a with block")
        self._ids += 1
        self._page.send(json.dumps({"id": self._ids, "method": method, "params": params}))
        while True:
            message = json.loads(self._page.recv(timeout=60))
            if message.get("id") == self._ids:
                if "error" in message:
                    raise ChromiumError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            event, details = message.get("method"), message.get("params", {})
            request = details.get("requestId")
            # A CORS preflight is reported as sent, and never as finished.
            if event == "Network.requestWillBeSent" and details.get("type") != "Preflight":
                url, headers = details["request"]["url"], details["request"]["headers"]
                self._in_flight[request] = url
                self._sent[request] = LoggedRequest(url, {k.lower(): v for k, v in headers.items()})
            elif event in ("Network.loadingFinished", "Network.loadingFailed"):
                self._in_flight.pop(request, None)
                sent = self._sent.pop(request, None)
                if sent is not None and event == "Network.loadingFinished":
                    self._answered.append(sent)
            elif event == "Runtime.exceptionThrown":
                self.console_errors.append(details["exceptionDetails"].get("text", "exception"))
            elif event == "Runtime.consoleAPICalled" and details.get("type") in ("error", "assert"):
                self.console_errors.append(json.dumps(details.get("args", [])))
            elif event == "Log.entryAdded" and details["entry"].get("level") == "error":
                self.console_errors.append(details["entry"].get("text", ""))

    def answered(self) -> list[LoggedRequest]:
        """The page's requests answered in full so far, in the order they finished (the
        network events that arrived until now taken in first)."""
        self.send("Page.getNavigationHistory")
        return list(self._answered)

    def in_flight(self) -> list[str]:
        """The URLs of the page's requests not yet finished (events taken in first)."""
        self.send("Page.getNavigationHistory")
        return list(self._in_flight.values())

    def wait_for_network_idle(self, quiet_s: float = 0.5, timeout_s: float = 30) -> None:
        """Until no request of the page has been in flight for ``quiet_s``."""
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        while True:
            self.send("Page.getNavigationHistory")  # takes in the events so far
            now = time.monotonic()
            if self._in_flight:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= quiet_s:
                return
            if now > deadline:
                raise ChromiumError(f"requests still in flight: {self._in_flight}")
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise ChromiumError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_until(self, expression: str, what: str, timeout_s: float = 30) -> None:
        """Poll ``expression`` in the page until it is true (a page being replaced meanwhile
        counts as false)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.evaluate(expression):
                    return
            except ChromiumError as exc:
                if not any(gone in str(exc) for gone in _PAGE_REPLACED):
                    raise
            if time.monotonic() > deadline:
                raise ChromiumError(f"timed out waiting until {what}")
            time.sleep(0.05)

    def goto(self, url: str) -> None:
        """Load ``url`` as a new document, as typing it in the address bar does."""
        self.send("Page.navigate", url=url)
        self.wait_until(
            f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
            f"{url} loaded",
        )

    def screenshot(self, path: Path) -> Path:
        """The whole page, beyond the window, as a PNG at ``path``."""
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def hover(self, selector: str) -> None:
        """Move the mouse onto the element ``selector`` names."""
        x, y = self._center(selector)
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    def click(self, selector: str) -> None:
        """Click the element ``selector`` names, with the mouse, as a user does."""
        self.hover(selector)
        x, y = self._center(selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def _center(self, selector: str) -> tuple[float, float]:
        x, y = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        return x, y


def logged_requests(net_log: Path) -> list[LoggedRequest]:
    """The requests a network log shows answered in full, in the order they started. Requests
    cut off (an error, or the browser closing) are left out: the app may never finish them."""
    log = json.loads(net_log.read_text())
    types = log["constants"]["logEventTypes"]
    ended = log["constants"]["logEventPhase"]["PHASE_END"]
    started: dict[int, str] = {}
    headers: dict[int, dict[str, str]] = {}
    answered: set[int] = set()
    completed: set[int] = set()
    for event in log["events"]:
        source, kind, params = event["source"]["id"], event["type"], event.get("params") or {}
        if kind == types["URL_REQUEST_START_JOB"] and "url" in params:
            started.setdefault(source, params["url"])
        elif kind == types["HTTP_TRANSACTION_SEND_REQUEST_HEADERS"]:
            lines = params.get("headers", [])
            pairs = (line.split(": ", 1) for line in lines if ": " in line)
            headers[source] = {name.lower(): value for name, value in pairs}
        elif kind == types["HTTP_TRANSACTION_READ_RESPONSE_HEADERS"]:
            answered.add(source)
        elif (
            kind == types["REQUEST_ALIVE"]
            and event["phase"] == ended
            and not params.get("net_error")
        ):
            completed.add(source)
    return [
        LoggedRequest(url, headers.get(source, {}))
        for source, url in started.items()
        if source in answered and source in completed
    ]
