"""Dashboard 2, Cold cache and warm-ups: did the warm-ups keep caches warm, and when not, why.

Cold misses against warm-up jobs by outcome, warm-up coverage of data-cache hits,
the lead time between a warm-up filling an entry and its first user hit, misses
that raced a queued warm-up or followed a revalidation with no warm-up, the
warm-up queue's waits, and the blast radius of revalidations.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import base, panel, variable

NAME = "cold_cache"
UID = "nextrace-cold-cache"
VARIABLES = ("service", "route", "build")


def build() -> model.Dashboard:
    return (
        base("Cold cache and warm-ups", UID, ["cache", "warm-up"])
        .with_variable(variable(NAME, "service", "Service"))
        .with_variable(variable(NAME, "route", "Route"))
        .with_variable(variable(NAME, "build", "Build"))
        .with_panel(
            panel(
                NAME,
                1,
                "Cold misses and warm-ups",
                "cold_misses_vs_warmups",
                "timeseries",
                width=24,
            )
        )
        .with_panel(
            panel(NAME, 2, "Warm-up coverage of data-cache hits", "warmup_coverage", "table")
        )
        .with_panel(panel(NAME, 3, "Warm-up lead time", "warmup_lead_time", "table"))
        .with_panel(panel(NAME, 4, "Misses despite warm-ups", "missed_despite_warmup", "table"))
        .with_panel(panel(NAME, 5, "Warm-up queue", "warmup_queue", "table"))
        .with_panel(panel(NAME, 6, "Revalidation blast radius", "blast_radius", "table", width=24))
        .build()
    )
