"""Dashboard 2, Cold cache and warm-ups: did the warm-ups keep caches warm, and when not, why.

Cold misses against warm-up jobs by outcome, warm-up coverage of data-cache hits,
the lead time between a warm-up filling an entry and its first user hit, misses
that raced a queued warm-up or followed a revalidation with no warm-up, the
warm-up queue's waits, and the blast radius of revalidations.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import FILTERS, base, panel

NAME = "cold_cache"
UID = "nextrace-cold-cache"
VARIABLES = FILTERS


COLD_NEXTJS = (
    "Real Next.js apps: Next.js does not say why an entry was missing; the collector tells "
    "cold and deploy misses from the lookups it saw before. Their warm-ups show when they "
    "run through @nextrace/next's warmupQueue (js/next)."
)
WARMUP_NEXTJS = (
    "Real Next.js apps show here when their warm-ups run through @nextrace/next's warmupQueue "
    "(js/next): the collector then knows which lookups stored an entry for a warm-up."
)
BLAST_RADIUS_NEXTJS = (
    "Real Next.js apps show here when they revalidate through @nextrace/next's "
    "traceRevalidations (js/next). Next.js does not say how many entries a tag or path held, "
    "so their invalidated count reads 0."
)


def build() -> model.Dashboard:
    return (
        base("Cold cache and warm-ups", UID, ["cache", "warm-up"], VARIABLES, "cache_events")
        .with_panel(
            panel(
                NAME,
                1,
                "Cold misses and warm-ups",
                "cold_misses_vs_warmups",
                "timeseries",
                width=24,
                description=COLD_NEXTJS,
            )
        )
        .with_panel(
            panel(
                NAME,
                2,
                "Warm-up coverage of data-cache hits",
                "warmup_coverage",
                "table",
                description=WARMUP_NEXTJS,
            )
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Warm-up lead time",
                "warmup_lead_time",
                "table",
                description=WARMUP_NEXTJS,
            )
        )
        .with_panel(
            panel(
                NAME,
                4,
                "Misses despite warm-ups",
                "missed_despite_warmup",
                "table",
                description=(
                    "Real Next.js apps: raced_warmup counts misses while a warm-up of "
                    "@nextrace/next's warmupQueue was pending for the entry; the revalidation "
                    "column, misses after a revalidation traced by its traceRevalidations."
                ),
            )
        )
        .with_panel(
            panel(NAME, 5, "Warm-up queue", "warmup_queue", "table", description=WARMUP_NEXTJS)
        )
        .with_panel(
            panel(
                NAME,
                6,
                "Revalidation blast radius",
                "blast_radius",
                "table",
                width=24,
                description=BLAST_RADIUS_NEXTJS,
            )
        )
        .build()
    )
