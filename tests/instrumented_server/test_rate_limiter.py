"""The warm-up rate limiter, on a virtual clock: exact, and no real timer."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from instrumented_server.background import RateLimiter


class VirtualClock:
    """A clock that only moves when somebody sleeps on it; ``late_s`` models a slow wake-up."""

    def __init__(self, late_s: float = 0.0) -> None:
        self.now = 1000.0
        self.late_s = late_s

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds + self.late_s
        await asyncio.sleep(0)  # let the other acquirers run, as a real sleep would


def grants(clock: VirtualClock, callers: int, rate_per_s: float) -> list[float]:
    limiter = RateLimiter(rate_per_s, clock=clock, sleep=clock.sleep)
    taken: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        taken.append(clock())

    async def flood() -> None:
        await asyncio.gather(*(call() for _ in range(callers)))

    asyncio.run(flood())
    return taken


def busiest_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


def test_a_flood_of_concurrent_callers_never_gets_more_than_the_rate_in_any_second():
    taken = grants(VirtualClock(), callers=41, rate_per_s=10)
    assert len(taken) == 41
    assert busiest_second(taken) == 10
    # ... and no slower than the rate: 40 gaps of 0.1 s.
    assert taken[-1] - taken[0] == pytest.approx(4.0)


def test_a_late_wake_up_never_lets_the_next_caller_in_early():
    taken = grants(VirtualClock(late_s=0.05), callers=12, rate_per_s=10)
    gaps = [b - a for a, b in itertools.pairwise(taken)]
    assert min(gaps) >= 0.1 - 1e-9
    assert busiest_second(taken) <= 10
