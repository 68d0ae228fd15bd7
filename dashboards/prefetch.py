"""Dashboard 3, Prefetch: what prefetching costs and what it buys.

Prefetch requests against navigations and their ratio (amplification), the
share of server and middleware work spent on prefetches, how many prefetched
payloads a navigation used, the router-cache result of navigations, and what
prefetches of each route got back (full payload, loading state, or nothing).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, table, timeseries
from grafana_foundation_sdk.models import dashboard as model

from dashboards.clickhouse import DATASOURCE, Format, load_sql, query

NAME = "prefetch"
UID = "nextrace-prefetch"
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
        dashboard.Dashboard("nextrace: Prefetch")
        .uid(UID)
        .tags(["nextrace", "prefetch"])
        .time("now-1h", "now")
        .with_variable(service)
        .with_panel(_panel(1, "Prefetches and navigations", "prefetch_vs_navigation", "timeseries"))
        .with_panel(_panel(2, "Prefetches per navigation", "amplification", "timeseries"))
        .with_panel(_panel(3, "Load from prefetches", "prefetch_load", "table"))
        .with_panel(_panel(4, "Prefetch conversion", "prefetch_conversion", "table"))
        .with_panel(_panel(5, "Router cache of navigations", "router_cache", "table"))
        .with_panel(_panel(6, "What prefetches got back", "prefetch_payloads", "table"))
        .build()
    )
