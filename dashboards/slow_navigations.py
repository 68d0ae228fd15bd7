"""Dashboard 4, Slow navigations: where the time of a navigation goes, down to one trace.

Latency percentiles of navigations (browser spans) and requests (server spans)
per route, time per phase, sequential-fetch waterfalls, and the slowest traces,
whose trace id opens Grafana's trace view on ``otel_traces``.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from grafana_foundation_sdk.models import dashboard as model

from dashboards.clickhouse import DATASOURCE_TYPE, DATASOURCE_UID, load_sql
from dashboards.common import FILTERS, base, needs_browser, panel
from dashboards.macros import PLUGIN_VERSION

NAME = "slow_navigations"
UID = "nextrace-slow-navigations"
VARIABLES = FILTERS
TRACE_ID_VALUE = "${__value.raw}"


def trace_view_url() -> str:
    """An Explore link that shows the clicked trace id in Grafana's trace view."""
    trace_query = {
        "refId": "A",
        "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
        "editorType": "sql",
        "pluginVersion": PLUGIN_VERSION,
        "queryType": "traces",
        "format": 3,
        "rawSql": load_sql(NAME, "trace").replace("${trace_id}", TRACE_ID_VALUE),
    }
    panes = {
        "trace": {
            "datasource": DATASOURCE_UID,
            "queries": [trace_query],
            "range": {"from": "now-6h", "to": "now"},
        }
    }
    # Grafana fills in ${__value.raw} before following the link, so it stays unescaped.
    placeholder = "TRACEIDPLACEHOLDER"
    encoded = quote(json.dumps(panes).replace(TRACE_ID_VALUE, placeholder), safe="")
    return "/explore?schemaVersion=1&orgId=1&panes=" + encoded.replace(placeholder, TRACE_ID_VALUE)


def build() -> model.Dashboard:
    trace_link = model.DynamicConfigValue(
        id_val="links",
        value=[{"title": "Open in trace view", "url": trace_view_url(), "targetBlank": False}],
    )
    slowest = panel(NAME, 5, "Slowest traces", "slowest_traces", "table", width=24)
    slowest.override_by_name("trace_id", [trace_link])
    return (
        base("Slow navigations", UID, ["latency"], VARIABLES, "requests")
        .with_panel(needs_browser(NAME, 1, "Navigation latency per route", "navigation_latency"))
        .with_panel(
            panel(NAME, 2, "Request latency and TTFB per route", "request_latency", "table")
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Time per phase",
                "time_per_phase",
                "table",
                description=(
                    "Real Next.js apps: phases come from Next's own spans (middleware, route "
                    "resolution, render, fetches); there is no cdn or stream phase."
                ),
            )
        )
        .with_panel(
            panel(
                NAME,
                4,
                "Sequential-fetch waterfalls",
                "waterfalls",
                "table",
                description=(
                    "Real Next.js apps: a fetch waited for the fetch of the same trace that "
                    "ended last before it started (read from timing, as Next.js does not say)."
                ),
            )
        )
        .with_panel(slowest)
        .build()
    )
