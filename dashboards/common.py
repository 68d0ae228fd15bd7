"""Pieces every nextrace dashboard shares: panels, variables, deploy annotations, links."""

from __future__ import annotations

from typing import Literal

from grafana_foundation_sdk.builders import dashboard, table, timeseries
from grafana_foundation_sdk.models import dashboard as model

from dashboards.clickhouse import DATASOURCE, Format, load_sql, query

TAG = "nextrace"
FILTERS = ("service", "route", "build")
"""The variables of every dashboard but Collector health."""
FilterTable = Literal["cache_events", "requests"]
"""Where a dashboard's variables find their values: the table its panels mostly read."""


NEXTJS_REQUESTS = (
    "Real Next.js apps: a prefetch is recognised from its request's shape unless the helper "
    "records the prefetch headers, and a navigation served whole from prerendered output "
    "then counts as a prefetch (docs/semantic-conventions.md)."
)
NEEDS_BROWSER = (
    "Needs the browser: what a browser's router did (prefetches it used, navigations its cache "
    "served, how long the user waited) never reaches the server. The reference server's virtual "
    "browsers show here, and a real app's browsers with @nextrace/next/client (js/next)."
)


def panel(
    dashboard_name: str,
    panel_id: int,
    title: str,
    sql: str,
    fmt: Format,
    width: int = 12,
    description: str = "",
    per_minute: bool = False,
) -> table.Panel | timeseries.Panel:
    """A table or time-series panel whose one target is ``sql/<dashboard_name>/<sql>.sql``;
    ``description`` says what a real Next.js app cannot report there. A ``per_minute`` panel
    reads a per-minute aggregate table, so its interval is at least a minute."""
    built = timeseries.Panel() if fmt == "timeseries" else table.Panel()
    built = (
        built.id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(query(dashboard_name, sql, fmt))
        .height(9)
        .span(width)
    )
    if per_minute:
        built = built.interval("1m")
    return built.description(description) if description else built


def needs_browser(
    dashboard_name: str, panel_id: int, title: str, sql: str, width: int = 12
) -> table.Panel | timeseries.Panel:
    """A table panel of what only a browser can report, saying so to its reader."""
    return panel(dashboard_name, panel_id, title, sql, "table", width, NEEDS_BROWSER)


def variable(name: str, label: str, table: FilterTable) -> dashboard.QueryVariable:
    """A multi-value variable with All, filled by ``sql/variables/<name>.sql`` from ``table``
    for the time range."""
    # Not string.Template: the query holds Grafana's own $__macros.
    sql = load_sql("variables", name).replace("${table}", table)
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(sql)
        .multi(True)
        .include_all(True)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
    )


def deploys() -> dashboard.AnnotationQuery:
    """Deploys, drawn as annotations on every time axis."""
    return (
        dashboard.AnnotationQuery()
        .name("Deploys")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .target(query("common", "deploys", "table"))
    )


def links() -> dashboard.DashboardLink:
    """A menu of the other nextrace dashboards, keeping the time range and the variables."""
    return (
        dashboard.DashboardLink("nextrace")
        .type(model.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    )


def base(
    title: str,
    uid: str,
    tags: list[str],
    variables: tuple[str, ...] = (),
    filter_table: FilterTable = "cache_events",
) -> dashboard.Dashboard:
    """A dashboard with nextrace's tag, time range, deploy annotations and links, and a
    variable for each of ``variables``, filled from ``filter_table``."""
    built = (
        dashboard.Dashboard(f"nextrace: {title}")
        .uid(uid)
        .tags([TAG, *tags])
        .time("now-1h", "now")
        .refresh("30s")
        .annotation(deploys())
        .link(links())
    )
    for name in variables:
        built = built.with_variable(variable(name, name.capitalize(), filter_table))
    return built
