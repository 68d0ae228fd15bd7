"""Data links into Grafana's Explore: one query of nextrace's datasource, for the value clicked.

Grafana fills a data link's variables in before following it: ``${__value.raw}`` (the cell's
value) and the dashboard's time range, ``${__from}`` and ``${__to}``. Everything else in the
link is URL-encoded here. The value lands in the query's text as it is: only values whose
characters need no quoting or encoding belong there (trace ids are hexadecimal).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from dashboards.clickhouse import DATASOURCE_TYPE, DATASOURCE_UID, load_sql
from dashboards.macros import PLUGIN_VERSION

# Stand-ins that JSON and URL encoding leave alone, replaced by Grafana's variables at the end.
_VALUE, _FROM, _TO = "NEXTRACEVALUE", "NEXTRACEFROM", "NEXTRACETO"


def explore_url(
    dashboard: str, sql: str, *, placeholder: str, value: str, query_type: str, fmt: int
) -> str:
    """A link to Explore running ``dashboards/sql/<dashboard>/<sql>.sql`` over the dashboard's
    time range, its ``placeholder`` replaced by ``value`` (a data link variable)."""
    target: dict[str, Any] = {
        "refId": "A",
        "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
        "editorType": "sql",
        "pluginVersion": PLUGIN_VERSION,
        "queryType": query_type,
        "format": fmt,
        "rawSql": load_sql(dashboard, sql).replace(placeholder, _VALUE),
    }
    panes = {
        "a": {
            "datasource": DATASOURCE_UID,
            "queries": [target],
            "range": {"from": _FROM, "to": _TO},
        }
    }
    encoded = quote(json.dumps(panes), safe="")
    for stand_in, variable in ((_VALUE, value), (_FROM, "${__from}"), (_TO, "${__to}")):
        encoded = encoded.replace(stand_in, variable)
    return "/explore?schemaVersion=1&orgId=1&panes=" + encoded
