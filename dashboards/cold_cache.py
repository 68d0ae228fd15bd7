"""Dashboard 2, Cold cache and warm-ups: did the warm-ups keep caches warm, and when not, why.

Cold misses against warm-up jobs by outcome, warm-up coverage of data-cache hits,
the lead time between a warm-up filling an entry and its first user hit, misses
that raced a queued warm-up or followed a revalidation with no warm-up, the
warm-up queue's waits, and the blast radius of revalidations.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, table, timeseries
from grafana_foundation_sdk.models import dashboard as model

from dashboards.clickhouse import DATASOURCE, Format, load_sql, query

NAME = "cold_cache"
UID = "nextrace-cold-cache"
VARIABLES = ("service",)


def _panel(panel_id: int, title: str, sql: str, fmt: Format) -> table.Panel | timeseries.Panel:
    panel = timeseries.Panel() if fmt == "timeseries" else table.Panel()
    return (
        panel.id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(query(NAME, sql, fmt))
        .height(8)
        .span(12)
    )


def build() -> model.Dashboard:
    service = (
        dashboard.QueryVariable("service")
        .label("Service")
        .datasource(DATASOURCE)
        .query(load_sql(NAME, "var_service"))
        .multi(True)
        .include_all(True)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    return (
        dashboard.Dashboard("nextrace: Cold cache and warm-ups")
        .uid(UID)
        .tags(["nextrace", "cache", "warm-up"])
        .time("now-1h", "now")
        .with_variable(service)
        .with_panel(
            _panel(1, "Cold misses and warm-ups", "cold_misses_vs_warmups", "timeseries").span(24)
        )
        .with_panel(_panel(2, "Warm-up coverage of data-cache hits", "warmup_coverage", "table"))
        .with_panel(_panel(3, "Warm-up lead time", "warmup_lead_time", "table"))
        .with_panel(_panel(4, "Misses despite warm-ups", "missed_despite_warmup", "table"))
        .with_panel(_panel(5, "Warm-up queue", "warmup_queue", "table"))
        .with_panel(_panel(6, "Revalidation blast radius", "blast_radius", "table").span(24))
        .build()
    )
