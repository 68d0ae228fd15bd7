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
                description=NEXTJS_REQUESTS,
                per_minute=True,
            )
        )
        .with_panel(
            panel(
                NAME,
                2,
                "Prefetches per navigation",
                "amplification",
                "timeseries",
                description=NEXTJS_REQUESTS,
                per_minute=True,
            )
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Load from prefetches",
                "prefetch_load",
                "table",
                description=NEXTJS_REQUESTS,
            )
        )
        .with_panel(needs_browser(NAME, 4, "Prefetch conversion", "prefetch_conversion"))
        .with_panel(needs_browser(NAME, 5, "Router cache of navigations", "router_cache"))
        .with_panel(needs_browser(NAME, 6, "What prefetches got back", "prefetch_payloads"))
        .with_panel(
            panel(
                NAME,
                7,
                "Prefetch payload sizes",
                "prefetch_sizes",
                "table",
                description=(
                    "Real Next.js apps show here with @nextrace/next's processor, which records "
                    "the size of each response body."
                ),
            )
        )
        .build()
    )
