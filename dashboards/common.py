"""Pieces every nextrace dashboard shares: panels, variables, deploy annotations, links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, table, timeseries
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model

from dashboards.clickhouse import DATASOURCE, Format, load_sql, query
from dashboards.explore import trace_view_url

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


BASE_URL = "nextrace_url"
"""The dashboard variable that says where the collector's pages answer (the trace view, the
slow list: ``nextrace collect``'s ``/trace/{id}`` and ``/slow``); data links open them."""
DEFAULT_BASE_URL = "http://127.0.0.1:4318"
PAGE_LINKS: dict[str, list[dict[str, Any]]] = {
    "trace_id": [
        {"title": "nextrace trace view", "url": f"${{{BASE_URL}}}/trace/${{__value.raw}}"},
        {
            "title": "Grafana's trace view",
            "url": trace_view_url(),
        },
    ],
    "route": [
        {
            "title": "Slowest navigations of this route",
            "url": f"${{{BASE_URL}}}/slow?route=${{__value.raw:percentencode}}",
        },
        # No Explore link: a route is a span's attribute, so anyone who can send spans chooses
        # it, and Grafana has no variable format that both quotes it for SQL and encodes it
        # for a URL; put into an Explore query's text, a quote in it would end the string.
    ],
}
"""The data links of a column that lists traces or routes, by the column's name."""
Steps = Sequence[tuple[float | None, str]]
"""Threshold steps: from each value (None: from the lowest) on, this colour."""


def panel(
    dashboard_name: str,
    panel_id: int,
    title: str,
    sql: str,
    fmt: Format,
    width: int = 12,
    notes: str = "",
    per_minute: bool = False,
    *,
    unit: str,
    answers: str,
    act: str,
    units: Mapping[str, str] | None = None,
    thresholds: Steps = (),
    thresholds_on: str = "",
    links: Sequence[str] = (),
) -> table.Panel | timeseries.Panel:
    """A table or time-series panel whose one target is ``sql/<dashboard_name>/<sql>.sql``.

    Its description says what it ``answers`` and what to do when it is bad (``act``), then
    the ``notes`` (what a real Next.js app cannot report there). ``unit`` is every field's,
    ``units`` a column's own; ``thresholds`` mark the goal (on ``thresholds_on``, a column of
    a table, coloured). Each of the ``links`` columns (:data:`PAGE_LINKS`) links to the
    collector's pages. A
    ``per_minute`` panel reads a per-minute aggregate table, so its interval is at least a
    minute."""
    built = timeseries.Panel() if fmt == "timeseries" else table.Panel()
    description = f"{answers}\n\nWhen it is bad: {act}" + (f"\n\n{notes}" if notes else "")
    built = (
        built.id(panel_id)
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query(dashboard_name, sql, fmt))
        .height(9)
        .span(width)
        .unit(unit)
    )
    columns: dict[str, list[model.DynamicConfigValue]] = {}
    for column, its_unit in (units or {}).items():
        columns.setdefault(column, []).append(model.DynamicConfigValue("unit", its_unit))
    if thresholds and thresholds_on:
        columns.setdefault(thresholds_on, []).extend(
            [
                model.DynamicConfigValue("thresholds", _steps(thresholds).build()),
                model.DynamicConfigValue("custom.cellOptions", {"type": "color-text"}),
            ]
        )
    elif thresholds and isinstance(built, timeseries.Panel):
        built = built.thresholds(_steps(thresholds)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common_model.GraphThresholdsStyleMode.LINE
            )
        )
    for column in links:
        columns.setdefault(column, []).append(model.DynamicConfigValue("links", PAGE_LINKS[column]))
    for column, properties in columns.items():
        built = built.override_by_name(column, properties)
    if per_minute:
        built = built.interval("1m")
    return built


def _steps(thresholds: Steps) -> dashboard.ThresholdsConfig:
    """The goal's steps, for a panel's every field or for one column's override."""
    return (
        dashboard.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in thresholds])
    )


def needs_browser(
    dashboard_name: str,
    panel_id: int,
    title: str,
    sql: str,
    width: int = 12,
    **words: Any,
) -> table.Panel | timeseries.Panel:
    """A table panel of what only a browser can report, saying so to its reader; ``words``:
    its unit, what it answers and what to do (see :func:`panel`)."""
    return panel(dashboard_name, panel_id, title, sql, "table", width, NEEDS_BROWSER, **words)


def base_url() -> dashboard.TextBoxVariable:
    """:data:`BASE_URL`, a text box: where this Grafana's users reach the collector."""
    return (
        dashboard.TextBoxVariable(BASE_URL)
        .label("nextrace pages at")
        .default_value(DEFAULT_BASE_URL)
    )


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
    return built.with_variable(base_url())
