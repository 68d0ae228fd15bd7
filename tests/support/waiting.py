"""The one way a test waits: poll a condition until it holds, with a bound that fails the test
saying what it waited for."""

from __future__ import annotations

import time


def wait_until(condition, what: str, timeout_s: float = 120, detail=lambda: "") -> None:
    """Poll ``condition``; on timeout, fail with ``what`` and what ``detail()`` tells."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}\n{detail()}"
        time.sleep(0.05)
