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
                notes=COLD_NEXTJS,
                unit="short",
                answers="Cold misses (deploy, cold) against warm-up jobs, by outcome, per "
                "interval; deploys are the red marks.",
                act="a spike of cold misses after a deploy with no warm-ups before it: warm the "
                "most visited routes before the switch. Failed or queue_full warm-ups: read "
                "Warm-up queue. The Cold-cache spike alert fires when a layer's recent miss "
                "ratio is twice its usual plus 25 points.",
            )
        )
        .with_panel(
            panel(
                NAME,
                2,
                "Warm-up coverage of data-cache hits",
                "warmup_coverage",
                "table",
                notes=WARMUP_NEXTJS,
                unit="short",
                units={"coverage": "percentunit"},
                thresholds=((None, "red"), (0.2, "orange"), (0.5, "green")),
                thresholds_on="coverage",
                answers="Of the data-cache hits, how many served an entry a warm-up stored.",
                act="low coverage while cold misses spike: the warm-ups warm the wrong "
                "entries or finish after users arrive (Warm-up lead time).",
            )
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Warm-up lead time",
                "warmup_lead_time",
                "table",
                notes=WARMUP_NEXTJS,
                unit="short",
                units={"lead_time_ms": "ms"},
                answers="Per warmed entry, how long before its first user hit the warm-up "
                "stored it.",
                act="lead times near zero mean users nearly beat the warm-up: start it "
                "earlier, before the switch.",
            )
        )
        .with_panel(
            panel(
                NAME,
                4,
                "Misses despite warm-ups",
                "missed_despite_warmup",
                "table",
                unit="short",
                answers="Misses that a warm-up would have prevented: those while its job was "
                "still queued, and those after a revalidation that queued none.",
                act="raced warm-ups: more warm-up workers or a higher rate limit; after "
                "revalidations: warm what a webhook revalidates.",
                notes=(
                    "Real Next.js apps: raced_warmup counts misses while a warm-up of "
                    "@nextrace/next's warmupQueue was pending for the entry; the revalidation "
                    "column, misses after a revalidation traced by its traceRevalidations."
                ),
            )
        )
        .with_panel(
            panel(
                NAME,
                5,
                "Warm-up queue",
                "warmup_queue",
                "table",
                notes=WARMUP_NEXTJS,
                unit="short",
                units={"avg_wait_ms": "ms", "max_wait_ms": "ms"},
                thresholds=((None, "green"), (1000, "orange"), (5000, "red")),
                thresholds_on="max_wait_ms",
                answers="Warm-up jobs by trigger and outcome, and how long they waited in the "
                "queue (the backlog).",
                act="waits over a second: the queue is behind its traffic (raise "
                "warmup.rate_per_s or its workers); queue_full: it drops jobs (raise "
                "max_jobs).",
            )
        )
        .with_panel(
            panel(
                NAME,
                6,
                "Revalidation blast radius",
                "blast_radius",
                "table",
                width=24,
                notes=BLAST_RADIUS_NEXTJS,
                unit="short",
                answers="Per revalidated tag or path, how often and how many entries it "
                "invalidated.",
                act="a tag that invalidates many entries at once makes a cold spike: split it "
                "into narrower tags, or revalidate with 'max' (stale while it refills).",
            )
        )
        .build()
    )
