"""Dashboard 3, Prefetch: what prefetching costs and what it buys.

Prefetch requests against navigations and their ratio (amplification), the
share of server and middleware work spent on prefetches, how many prefetched
payloads a navigation used, the router-cache result of navigations, and what
prefetches of each route got back (full payload, loading state, or nothing).
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import FILTERS, NEXTJS_REQUESTS, base, needs_browser, panel

NAME = "prefetch"
UID = "nextrace-prefetch"
VARIABLES = FILTERS


def build() -> model.Dashboard:
    return (
        base("Prefetch", UID, ["prefetch"], VARIABLES, "requests")
        .with_panel(
            panel(
                NAME,
                1,
                "Prefetches and navigations",
                "prefetch_vs_navigation",
                "timeseries",
                notes=NEXTJS_REQUESTS,
                per_minute=True,
                unit="short",
                answers="Prefetch requests and navigation requests the server answered, each "
                "minute.",
                act="prefetches rising while navigations do not: a release put more links in "
                "view, or middleware disables their reuse (read Prefetches per navigation).",
            )
        )
        .with_panel(
            panel(
                NAME,
                2,
                "Prefetches per navigation",
                "amplification",
                "timeseries",
                notes=NEXTJS_REQUESTS,
                per_minute=True,
                unit="short",
                thresholds=((None, "green"), (3, "orange"), (10, "red")),
                answers="Prefetch requests per navigation request, each minute: what "
                "prefetching multiplies the server's load by.",
                act="above 3: find the page with many links in view (What prefetches got "
                "back) and use prefetch={false} or a matcher that skips prefetches in "
                "middleware; the Prefetch amplification alert fires at 3 times the usual.",
            )
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Load from prefetches",
                "prefetch_load",
                "table",
                notes=NEXTJS_REQUESTS,
                unit="short",
                units={"prefetch_share": "percentunit", "prefetch_time_share": "percentunit"},
                answers="Per phase, the share of the server's spans and time spent on prefetches.",
                act="a large middleware share: its matcher runs on prefetches; skip them with "
                "missing: [{ type: 'header', key: 'next-router-prefetch' }].",
            )
        )
        .with_panel(
            needs_browser(
                NAME,
                4,
                "Prefetch conversion",
                "prefetch_conversion",
                unit="short",
                units={"conversion": "percentunit"},
                answers="Prefetched payloads a navigation used, against those never used.",
                act="a low conversion: prefetching costs more than it buys; prefetch on hover "
                "or only the likely links.",
            )
        )
        .with_panel(
            needs_browser(
                NAME,
                5,
                "Router cache of navigations",
                "router_cache",
                unit="short",
                answers="Navigations the client router served from its cache (hit), from a "
                "loading state first (partial), or not at all (miss).",
                act="many misses on prefetched links: the stale times are shorter than users "
                "take to click (staleTimes in next.config).",
            )
        )
        .with_panel(
            needs_browser(
                NAME,
                6,
                "What prefetches got back",
                "prefetch_payloads",
                unit="short",
                answers="Per route, prefetches that got the full payload, a loading state, or "
                "nothing.",
                act="many empty ones: prefetches the server refused or middleware redirected; "
                "click a route for its slowest navigations.",
                links=("route",),
            )
        )
        .with_panel(
            panel(
                NAME,
                7,
                "Prefetch payload sizes",
                "prefetch_sizes",
                "table",
                unit="short",
                units={"p50_bytes": "bytes", "p95_bytes": "bytes", "total_bytes": "bytes"},
                links=("route",),
                answers="Per route, how many prefetches and how many bytes they sent.",
                act="large payloads prefetched often: prefetch the loading state only "
                "(prefetch='auto' on dynamic routes) or trim the page's data.",
                notes=(
                    "Real Next.js apps show here with @nextrace/next's processor, which records "
                    "the size of each response body."
                ),
            )
        )
        .build()
    )
