"""The data link into Grafana's Explore: the trace view of the trace id clicked.

Grafana fills a data link's variables in before following it: ``${__value.raw}`` (the cell's
value) and the dashboard's time range, ``${__from}`` and ``${__to}``. Everything else in the
link is URL-encoded here. The value lands in the query's text as it is, which only a value
that needs no quoting or encoding may do: a trace id is hexadecimal.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from dashboards.clickhouse import DATASOURCE_TYPE, DATASOURCE_UID, load_sql
from dashboards.macros import PLUGIN_VERSION

# Stand-ins that JSON and URL encoding leave alone, replaced by Grafana's variables at the end.
_VALUE, _FROM, _TO = "NEXTRACEVALUE", "NEXTRACEFROM", "NEXTRACETO"


def trace_view_url() -> str:
    """A link to Explore showing the clicked trace id in Grafana's trace view
    (``dashboards/sql/common/trace.sql``, the plugin's trace query format), over the
    dashboard's time range."""
    target: dict[str, Any] = {
        "refId": "A",
        "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
        "editorType": "sql",
        "pluginVersion": PLUGIN_VERSION,
        "queryType": "traces",
        "format": 3,
        "rawSql": load_sql("common", "trace").replace("${trace_id}", _VALUE),
    }
    panes = {
        "a": {
            "datasource": DATASOURCE_UID,
            "queries": [target],
            "range": {"from": _FROM, "to": _TO},
        }
    }
    encoded = quote(json.dumps(panes), safe="")
    for stand_in, variable in ((_VALUE, "${__value.raw}"), (_FROM, "${__from}"), (_TO, "${__to}")):
        encoded = encoded.replace(stand_in, variable)
    return "/explore?schemaVersion=1&orgId=1&panes=" + encoded
