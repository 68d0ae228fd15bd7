"""A clock the test moves (:class:`collector.clock.Clock`): time passes only in
:meth:`ManualClock.advance`, so what a stage does at a time does not depend on how fast the
machine is."""

from __future__ import annotations

import threading

# How long a waiting stage sleeps, in real time, before it looks at the clock again: a bound on
# a missed wake-up, never a decision (the stage decides on the clock's time).
_RECHECK_S = 0.05


class ManualClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._conditions: set[threading.Condition] = set()
        self._events: set[threading.Event] = set()

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, and wake every stage waiting on the clock."""
        with self._lock:
            self._now += seconds
            conditions, events = list(self._conditions), list(self._events)
        for condition in conditions:
            with condition:
                condition.notify_all()
        for event in events:
            event.set()

    def wait(self, condition: threading.Condition, timeout_s: float | None) -> None:
        with self._lock:
            self._conditions.add(condition)
        condition.wait(_RECHECK_S)

    def sleep(self, wake: threading.Event, timeout_s: float) -> None:
        with self._lock:
            self._events.add(wake)
        wake.wait(_RECHECK_S)
