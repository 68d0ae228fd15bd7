"""The one way a test waits: poll a condition until it holds, with a bound that fails the test
saying what it waited for."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx


def wait_until(condition, what: str, timeout_s: float = 120, detail=lambda: "") -> None:
    """Poll ``condition``; on timeout, fail with ``what`` and what ``detail()`` tells."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}\n{detail()}"
        time.sleep(0.05)


def answers(url: str, **request: Any) -> bool:
    """Whether ``url`` answers at all (any status): the server behind it is up. ``request``:
    httpx.get's options (a client's ``verify``, say)."""
    try:
        httpx.get(url, timeout=2, **request)
    except httpx.HTTPError:
        return False
    return True


def listens(port: int) -> bool:
    """Whether something on loopback accepts connections on ``port`` (no request is sent)."""
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True
