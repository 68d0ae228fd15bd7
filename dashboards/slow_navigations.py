"""Dashboard 4, Slow navigations: where the time of a navigation goes, down to one trace.

Latency percentiles of navigations (browser spans) and requests (server spans)
per route, time per phase, sequential-fetch waterfalls, and the slowest traces,
whose trace id opens Grafana's trace view on ``otel_traces``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import FILTERS, base, needs_browser, panel

NAME = "slow_navigations"
UID = "nextrace-slow-navigations"
VARIABLES = FILTERS
LATENCY_GOAL = ((None, "green"), (1000, "orange"), (2500, "red"))
"""A navigation over a second feels slow; 2.5 s is the Core Web Vitals' limit for LCP."""


def build() -> model.Dashboard:
    slowest = panel(
        NAME,
        5,
        "Slowest traces",
        "slowest_traces",
        "table",
        width=24,
        unit="short",
        units={"duration_ms": "ms"},
        answers="The slowest navigations and requests: each trace opens nextrace's trace "
        "view (its cause and critical path) or Grafana's.",
        links=("trace_id",),
        act="open the slowest: its cause names the fetch, the cache miss or the queue that "
        "held it up.",
    )
    return (
        base("Slow navigations", UID, ["latency"], VARIABLES, "requests")
        .with_panel(
            needs_browser(
                NAME,
                1,
                "Navigation latency per route",
                "navigation_latency",
                unit="ms",
                units={"navigations": "short"},
                thresholds=LATENCY_GOAL,
                thresholds_on="p95_ms",
                links=("route",),
                answers="Per route, how long users waited for a navigation: its median, 95th "
                "and 99th percentiles.",
                act="a p95 over 1 s: click the route for its slowest navigations and open "
                "one; its cause says what held it up.",
            )
        )
        .with_panel(
            panel(
                NAME,
                2,
                "Request latency and TTFB per route",
                "request_latency",
                "table",
                unit="ms",
                units={"requests": "short"},
                thresholds=LATENCY_GOAL,
                thresholds_on="p95_ms",
                links=("route",),
                answers="Per route and request kind, the server's latency percentiles and its "
                "time to first byte.",
                act="a slow TTFB: the shell waits for data (wrap slow parts in Suspense); a "
                "slow total with a fast TTFB: a streamed part is slow.",
            )
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Time per phase",
                "time_per_phase",
                "table",
                unit="ms",
                units={"spans": "short"},
                answers="Where the server's time goes: per phase, its spans and their total "
                "and average time.",
                act="fetch first: read Sequential-fetch waterfalls and the data cache's "
                "misses; middleware high: its matcher runs on more than it needs.",
                notes=(
                    "Real Next.js apps: phases come from Next's own spans (middleware, route "
                    "resolution, render, fetches); there is no cdn or stream phase."
                ),
            )
        )
        .with_panel(
            panel(
                NAME,
                4,
                "Sequential-fetch waterfalls",
                "waterfalls",
                "table",
                unit="ms",
                units={"times": "short"},
                answers="Fetches that waited for another fetch of the same request to end "
                "first, how often, and how long they took.",
                act="start them together (Promise.all), or preload the second's input.",
                notes=(
                    "Real Next.js apps: a fetch waited for the fetch of the same trace that "
                    "ended last before it started (read from timing, as Next.js does not say)."
                ),
            )
        )
        .with_panel(slowest)
        .build()
    )
