"""Dashboard 2, Cold cache and warm-ups: did the warm-ups keep caches warm, and when not, why.

Cold misses against warm-up jobs by outcome, warm-up coverage of data-cache hits,
the lead time between a warm-up filling an entry and its first user hit, misses
that raced a queued warm-up or followed a revalidation with no warm-up, the
warm-up queue's waits, and the blast radius of revalidations.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import FILTERS, base, panel, reference_only

NAME = "cold_cache"
UID = "nextrace-cold-cache"
VARIABLES = FILTERS


COLD_NEXTJS = (
    "This panel reads the reference server's lookup spans. Real Next.js apps do not say why an "
    "entry was missing; the collector tells cold and deploy misses where it can, in Cache "
    "health's misses by reason. Warm-ups are the reference server's."
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
                description=(
                    "Real Next.js apps: their data-cache hits count in hits, but Next.js does "
                    "not say which entries a warm-up filled, so warmed_hits counts only the "
                    "reference server's: for a Next.js service, coverage reads 0."
                ),
            )
        )
        .with_panel(reference_only(NAME, 3, "Warm-up lead time", "warmup_lead_time"))
        .with_panel(
            panel(
                NAME,
                4,
                "Misses despite warm-ups",
                "missed_despite_warmup",
                "table",
                description=(
                    "Real Next.js apps: their misses and stale hits count in misses; Next.js "
                    "does not say whether a warm-up was pending or what invalidated an entry, "
                    "so the other two columns count only the reference server's."
                ),
            )
        )
        .with_panel(reference_only(NAME, 5, "Warm-up queue", "warmup_queue"))
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
