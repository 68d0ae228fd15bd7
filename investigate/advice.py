"""What the report says to do, each line computed from the store and naming the figure it rests
on (``investigate/sql/advice_*.sql``):

- the routes to warm before the next switch: those whose lookups a deploy emptied, most first;
- the entries that expire before users come back: a longer revalidate or cacheLife;
- the links behind a prefetch storm (3 prefetches a navigation or more): the routes that take
  most of the prefetches;
- the warm-ups that raced their users: misses while the warm-up for the entry was queued.
"""

from __future__ import annotations

from typing import Any

from investigate.reader import Reader

STORM_PER_NAVIGATION = 3.0
"""Prefetch requests per navigation request from which prefetching is a storm (the Prefetch
dashboard's threshold)."""
STORM_ROUTES = 3  # the routes named as the storm's links


def advice(reader: Reader, window: dict[str, int]) -> list[str]:
    """The report's advice for the store ``reader`` reads, in ``window`` (its parameters)."""
    out = []
    if warm := reader.rows("advice_warm_routes", **window):
        listed = _listed(warm, "misses")
        out.append(
            f"Warm before the next switch: {listed}. Their lookups missed because a deploy "
            "had emptied their entries (misses after deploys, per route)."
        )
    for row in reader.rows("advice_expired", **window):
        waited = f"{row['misses']} waited for the data again" if row["misses"] else "none waited"
        out.append(
            f"{row['route']} ({row['layer']}): {row['misses'] + row['stale']} lookups found the "
            f"entry expired ({waited}, {row['stale']} were served stale): its revalidate (or "
            "cacheLife) is shorter than users take to come back; lengthen it."
        )
    routes = reader.rows("advice_prefetched_routes", **window)
    prefetches = sum(r["prefetches"] for r in routes)
    navigations = sum(r["navigations"] for r in routes)
    if prefetches >= STORM_PER_NAVIGATION * max(navigations, 1):
        top = routes[:STORM_ROUTES]
        listed = _listed(top, "prefetches")
        per = f"{prefetches / navigations:.1f} per navigation" if navigations else "none used"
        out.append(
            f"A prefetch storm: {prefetches} prefetch requests for {navigations} navigations "
            f"({per}). The links to {listed} "
            f"took {sum(r['prefetches'] for r in top) / prefetches:.0%} of them: prefetch them "
            "on hover, or set prefetch={false} on the lists that show many at once; keep "
            "middleware off prefetches."
        )
    if raced := reader.rows("advice_raced", **window):
        listed = _listed(raced, "raced")
        out.append(
            f"Warm-ups raced their users: {listed} missed while the warm-up for the entry was "
            "still queued. Warm before the switch, or raise the warm-up rate."
        )
    return out


def _listed(rows: list[dict[str, Any]], count: str) -> str:
    """``/a (8), /b (2)``: each row's route with its ``count``."""
    return ", ".join(f"{r['route']} ({r[count]})" for r in rows)


def render(lines: list[str]) -> list[str]:
    """The report's section of ``lines``; nothing to do says so."""
    out = ["", "== What to do =="]
    return out + ([f"- {line}" for line in lines] or ["nothing this window's data points at"])
