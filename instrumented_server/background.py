"""Work that outlives the request that started it: stale refreshes and warm-up jobs.

Keeps a reference to every task (so none is garbage-collected mid-flight),
lets tests wait until all of it is done, and bounds the rate at which
background work may call upstream APIs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until no background task is left (tasks may start others meanwhile)."""
        deadline = time.monotonic() + timeout_s
        while self._tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._tasks)} background task(s) still running")
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)


class RateLimiter:
    """Spaces calls at least ``1 / rate_per_s`` apart, so no second ever holds more than
    ``rate_per_s`` of them. ``clock`` and ``sleep`` are injected so tests need no real timer."""

    def __init__(
        self,
        rate_per_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a slot; return how long the caller waited, in seconds."""
        async with self._lock:  # held while sleeping: callers go one at a time
            wait = max(0.0, self._next - self._clock())
            if wait:
                await self._sleep(wait)
            # Measured from when the slot was really taken: a late wake-up never
            # lets the next caller in early.
            self._next = self._clock() + self._interval
        return wait
