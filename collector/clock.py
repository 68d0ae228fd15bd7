"""Where the stages read time and wait for it: one clock, given to each, so that a test can
move time itself instead of waiting for a real timer (``tests/support/clock.py``).

A stage reads :meth:`Clock.monotonic` for every decision that depends on time (a batch is
due, a trace is idle) and waits through the clock; the clock may wake it early, and the
stage then decides again on the clock's time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def wait(self, condition: threading.Condition, timeout_s: float | None) -> None:
        """Wait on ``condition``, whose lock the caller holds, until it is notified or
        ``timeout_s`` (None: no limit) passes on this clock; it may return earlier."""
        ...

    def sleep(self, wake: threading.Event, timeout_s: float) -> None:
        """Wait until ``wake`` is set or ``timeout_s`` passes on this clock; it may return
        earlier."""
        ...


class SystemClock:
    """The machine's monotonic clock, and real waits."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, condition: threading.Condition, timeout_s: float | None) -> None:
        condition.wait(timeout_s)

    def sleep(self, wake: threading.Event, timeout_s: float) -> None:
        wake.wait(timeout_s)


SYSTEM_CLOCK: Clock = SystemClock()
