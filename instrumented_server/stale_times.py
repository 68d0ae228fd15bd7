"""How long Next.js's client router reuses an RSC payload, by Next.js version.

A prefetched loading state, or a full payload of a static route, is reusable for ``static``
seconds; a navigated dynamic page for ``dynamic`` seconds (Next 14: 30 s and 5 min; Next 15
and 16: 0 s and 5 min). The virtual browsers' router cache (``traffic/router_cache.py``) and
the pages' client router (``static/router.js``, told by the server) keep the same times.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StaleTimes:
    dynamic_s: float
    static_s: float


STALE_TIMES = {
    "14": StaleTimes(dynamic_s=30, static_s=300),
    "15": StaleTimes(dynamic_s=0, static_s=300),
    "16": StaleTimes(dynamic_s=0, static_s=300),
}
DEFAULT_NEXT_VERSION = "15"
