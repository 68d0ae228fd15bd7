"""Dashboard 1, Cache health: is each cache layer serving, and why not when it is not.

Hit ratio per layer over time, misses by reason, which source filled the
entries that served hits, and the routes that miss most, filtered by service,
route and build; deploys are drawn as annotations. Reads ``cache_events``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import FILTERS, base, panel

HIT_RATIO_GOAL = ((None, "red"), (0.5, "orange"), (0.8, "green"))
"""A cache serving under half its lookups is failing; 80% is the goal a warm cache meets."""

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
        notes=NEXTJS_LAYERS,
        per_minute=True,
        unit="percentunit",
        answers="Per cache layer, the share of lookups served from the cache (a stale entry "
        "is served) each minute; deploys are the red marks.",
        act="a layer falling at a deploy is a cold start: warm its routes before the switch "
        "(Cold cache dashboard). A layer low all along has entries that live shorter than the "
        "traffic returns: read Misses by reason, then lengthen revalidate or cacheLife.",
        thresholds=HIT_RATIO_GOAL,
    )
    hit_ratio.min(0).max(1)
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
                notes=NEXTJS_LAYERS,
                per_minute=True,
                unit="short",
                answers="Misses each minute, by why the entry was not there: cold (never "
                "stored), expired, deploy, tag or path invalidated, evicted, other_instance.",
                act="deploy: warm before the switch; expired: a longer revalidate or "
                "cacheLife; tag_invalidated: revalidateTag(tag, 'max') serves stale while it "
                "refills; evicted: a bigger cache; other_instance: a shared cache handler.",
            )
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Hits by entry source",
                "hit_sources",
                "table",
                unit="short",
                answers="Per layer, who stored the entries that served hits: a request's "
                "miss, a prefetch, a warm-up, or a background revalidation.",
                act="few hits from warmup after deploys means the warm-ups came too late or "
                "warmed other entries: compare with Warm-up coverage.",
                notes=(
                    "Real Next.js apps: Next.js does not say what filled an entry; the collector "
                    "tells it from the lookups it saw: a request's miss, a prefetch's, a warm-up "
                    "of @nextrace/next's warmupQueue, or a stale read's background refresh "
                    "(revalidation). An entry stored before the collector saw it, by the build "
                    "say, is unknown."
                ),
            )
        )
        .with_panel(
            panel(
                NAME,
                4,
                "Top routes by misses",
                "top_routes_by_misses",
                "table",
                unit="short",
                answers="The routes whose lookups missed most, how many of those came after a "
                "deploy, and how many raced a warm-up still queued.",
                act="warm the top routes before a deploy; many warmup_raced misses mean the "
                "warm-up queue is too slow for the traffic. Click a route for its slowest "
                "navigations.",
                links=("route",),
            )
        )
        .with_panel(
            panel(
                NAME,
                5,
                "Next.js services whose data cache is invisible",
                "invisible_data_cache",
                "table",
                width=24,
                unit="short",
                answers="Next.js services that fetch without Next.js's own fetch span, so "
                "their data-cache lookups are missing from every panel. Empty is good.",
                act="turn the span on, as below.",
                notes=(
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
                unit="short",
                units={"hit_ratio": "percentunit"},
                thresholds=HIT_RATIO_GOAL,
                thresholds_on="hit_ratio",
                answers="Each 'use cache' function per handler: its lookups, the share served "
                "from the cache, its misses and their top reason.",
                act="other_instance misses: a shared handler ('use cache: remote'); expired: a "
                "longer cacheLife; deploy: warm its routes before the switch.",
                notes=(
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
                unit="short",
                units={"cross_instance_ratio": "percentunit"},
                answers="Per layer, hits whose entry another instance stored, against misses "
                "because only another instance's memory held the entry.",
                act="misses on other instances in a layer mean each instance fills its own "
                "copy: move it to a handler every instance shares (Redis, say).",
                notes=(
                    "For apps whose instances name themselves (OTEL_RESOURCE_ATTRIBUTES="
                    "service.instance.id=…): per layer, the hits an entry stored by another "
                    "instance served (a shared cache at work), and the misses because only "
                    "another instance's memory held the entry (a cache not shared)."
                ),
            )
        )
        .build()
    )
