"""The client router cache of a virtual browser, with Next.js's stale times.

Next.js keeps RSC payloads on the client for its stale times
(``instrumented_server/stale_times.py``). A navigation is a **hit** when a fresh full
payload is cached (no request), a **partial** hit when only the loading
state is (it shows at once, then the page is requested), and a **miss**
otherwise. Back and forward navigations reuse whatever is cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from instrumented_server.stale_times import STALE_TIMES, StaleTimes

__all__ = ["STALE_TIMES", "RouterCache", "RouterEntry", "StaleTimes"]

Payload = Literal["full", "loading", "empty"]
RouterResult = Literal["hit", "partial", "miss"]


@dataclass
class RouterEntry:
    href: str
    payload: Payload
    stored: float
    stale_s: float
    source: Literal["prefetch", "navigation"]
    source_trace_id: str
    build_id: str

    def fresh(self, now: float) -> bool:
        return now - self.stored < self.stale_s

    def age_ms(self, now: float) -> float:
        return (now - self.stored) * 1000


class RouterCache:
    def __init__(
        self, stale_times: StaleTimes, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.stale_times = stale_times
        self._entries: dict[str, RouterEntry] = {}

    def lookup(
        self, href: str, *, history: bool = False
    ) -> tuple[RouterResult, RouterEntry | None]:
        entry = self._entries.get(href)
        if entry is None or entry.payload == "empty":
            return "miss", entry
        if not history and not entry.fresh(self._clock()):
            return "miss", entry
        return ("hit" if entry.payload == "full" else "partial"), entry

    def store(
        self,
        href: str,
        payload: Payload,
        *,
        dynamic: bool,
        source: Literal["prefetch", "navigation"],
        source_trace_id: str,
        build_id: str,
    ) -> None:
        # A loading state or a static payload is reusable for the static stale time.
        stale = (
            self.stale_times.dynamic_s
            if dynamic and payload == "full"
            else (self.stale_times.static_s)
        )
        self._entries[href] = RouterEntry(
            href, payload, self._clock(), stale, source, source_trace_id, build_id
        )

    def has_fresh(self, href: str) -> bool:
        entry = self._entries.get(href)
        return entry is not None and entry.payload != "empty" and entry.fresh(self._clock())

    def clear(self) -> None:
        self._entries.clear()
