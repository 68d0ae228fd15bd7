"""Dashboard 1, Cache health: is each cache layer serving, and why not when it is not.

Hit ratio per layer over time, misses by reason, which source filled the
entries that served hits, and the routes that miss most, filtered by service,
route and build; deploys are drawn as annotations. Reads ``cache_events``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import FILTERS, base, panel

NEXTJS_LAYERS = (
    "Real Next.js apps report only the data layer (next.fetch.cache_status on AppRender.fetch), "
    "and, with the @nextrace/next helper, the full route cache and each 'use cache' handler "
    "(use_cache, use_cache_remote…); their spans say nothing of the CDN or the client router "
    "cache. Next.js never says why an entry was missing or stale: the collector tells expired, "
    "deploy, cold, other_instance (held only in another instance's memory) and, with the "
    "helper, tag or path revalidations from what it saw before, and 'unknown' where that "
    "cannot tell."
)

NAME = "cache_health"
UID = "nextrace-cache-health"
VARIABLES = FILTERS


def build() -> model.Dashboard:
    hit_ratio = panel(
        NAME,
        1,
        "Hit ratio per layer",
        "hit_ratio",
        "timeseries",
        description=NEXTJS_LAYERS,
        per_minute=True,
    )
    hit_ratio.unit("percentunit").min(0).max(1)
    return (
        base("Cache health", UID, ["cache"], VARIABLES, "cache_events")
        .with_panel(hit_ratio)
        .with_panel(
            panel(
                NAME,
                2,
                "Misses by reason",
                "misses_by_reason",
                "timeseries",
                description=NEXTJS_LAYERS,
                per_minute=True,
            )
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Hits by entry source",
                "hit_sources",
                "table",
                description=(
                    "Real Next.js apps: Next.js does not say what filled an entry; the collector "
                    "tells it from the lookups it saw: a request's miss, a prefetch's, a warm-up "
                    "of @nextrace/next's warmupQueue, or a stale read's background refresh "
                    "(revalidation). An entry stored before the collector saw it, by the build "
                    "say, is unknown."
                ),
            )
        )
        .with_panel(panel(NAME, 4, "Top routes by misses", "top_routes_by_misses", "table"))
        .with_panel(
            panel(
                NAME,
                5,
                "Next.js services whose data cache is invisible",
                "invisible_data_cache",
                "table",
                width=24,
                description=(
                    "Services listed here fetch without Next.js's own fetch span, so their "
                    "data-cache lookups are missing from every panel. The fix: set "
                    "process.env.NEXT_OTEL_FETCH_DISABLED = '0' in instrumentation.js after "
                    "registerOTel(), as examples/nextjs/instrumentation.js does."
                ),
            )
        )
        .with_panel(
            panel(
                NAME,
                6,
                "'use cache' functions",
                "use_cache_functions",
                "table",
                description=(
                    "Next.js 16 apps with Cache Components, whose 'use cache' handlers are "
                    "wrapped by @nextrace/next/cache-handler: each cached function (its file and "
                    "place in the build), how often it was served from its handler, and why it "
                    "ran instead. Many other_instance misses on the default (in-memory) handler "
                    "mean each instance fills its own copy: a shared handler ('use cache: "
                    "remote', Redis) would serve them."
                ),
            )
        )
        .with_panel(
            panel(
                NAME,
                7,
                "Hits across instances",
                "hits_across_instances",
                "table",
                description=(
                    "For apps whose instances name themselves (OTEL_RESOURCE_ATTRIBUTES="
                    "service.instance.id=…): per layer, the hits an entry stored by another "
                    "instance served (a shared cache at work), and the misses because only "
                    "another instance's memory held the entry (a cache not shared)."
                ),
            )
        )
        .build()
    )
