"""Dashboard 1, Cache health: is each cache layer serving, and why not when it is not.

Hit ratio per layer over time, misses by reason, which source filled the
entries that served hits, and the routes that miss most, filtered by service,
route and build; deploys are drawn as annotations. Reads ``cache_events``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, table, timeseries
from grafana_foundation_sdk.models import dashboard as model

from dashboards.clickhouse import DATASOURCE, load_sql, query

NAME = "cache_health"
UID = "nextrace-cache-health"
VARIABLES = ("service", "route", "build")


def variable(name: str, label: str) -> dashboard.QueryVariable:
    """A multi-value variable with All, filled by ``var_<name>.sql`` for the time range."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(load_sql(NAME, f"var_{name}"))
        .multi(True)
        .include_all(True)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
    )


def build() -> model.Dashboard:
    deploys = (
        dashboard.AnnotationQuery()
        .name("Deploys")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .target(query(NAME, "deploys", "table"))
    )
    return (
        dashboard.Dashboard("nextrace: Cache health")
        .uid(UID)
        .tags(["nextrace", "cache"])
        .time("now-1h", "now")
        .refresh("30s")
        .with_variable(variable("service", "Service"))
        .with_variable(variable("route", "Route"))
        .with_variable(variable("build", "Build"))
        .annotation(deploys)
        .with_panel(
            timeseries.Panel()
            .id(1)
            .title("Hit ratio per layer")
            .description("Served from cache (hit or stale) over lookups, per layer.")
            .datasource(DATASOURCE)
            .with_target(query(NAME, "hit_ratio", "timeseries"))
            .unit("percentunit")
            .min(0)
            .max(1)
            .height(9)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .id(2)
            .title("Misses by reason")
            .datasource(DATASOURCE)
            .with_target(query(NAME, "misses_by_reason", "timeseries"))
            .height(9)
            .span(12)
        )
        .with_panel(
            table.Panel()
            .id(3)
            .title("Hits by entry source")
            .description("Who filled the entries that served hits.")
            .datasource(DATASOURCE)
            .with_target(query(NAME, "hit_sources", "table"))
            .height(9)
            .span(12)
        )
        .with_panel(
            table.Panel()
            .id(4)
            .title("Top routes by misses")
            .datasource(DATASOURCE)
            .with_target(query(NAME, "top_routes_by_misses", "table"))
            .height(9)
            .span(12)
        )
        .build()
    )
