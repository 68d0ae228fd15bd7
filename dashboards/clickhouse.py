"""Grafana ClickHouse plugin queries as grafana-foundation-sdk objects.

The SDK ships no ClickHouse query type, so this is the documented extension:
a ``Dataquery`` with ``to_json``/``from_json``, registered with the SDK's
runtime so that dashboards read back from JSON keep their ClickHouse targets.
Targets always carry ``pluginVersion``, ``editorType: sql`` and a numeric
``format`` (0 time series, 1 table) with the matching ``queryType``, so that
the plugin neither migrates them as v3 queries nor guesses their shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common

from contract import nextjs
from dashboards.macros import PLUGIN_VERSION

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "nextrace-clickhouse"
DATASOURCE = common.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

Format = Literal["timeseries", "table"]
_FORMAT_NUMBER = {"timeseries": 0, "table": 1}


@dataclass
class ClickHouseQuery(cogvariants.Dataquery):
    raw_sql: str
    format: Format = "table"
    ref_id: str = "A"

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "editorType": "sql",
            "pluginVersion": PLUGIN_VERSION,
            "rawSql": self.raw_sql,
            "format": _FORMAT_NUMBER[self.format],
            "queryType": self.format,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        number = int(data.get("format", 1))
        fmt: Format = "timeseries" if number == 0 else "table"
        return cls(str(data.get("rawSql", "")), fmt, str(data.get("refId", "A")))


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    def __init__(self, query: ClickHouseQuery) -> None:
        self._query = query

    def build(self) -> ClickHouseQuery:
        return self._query


runtime.register_dataquery_variant(
    runtime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=ClickHouseQuery.from_json)
)


def load_sql(dashboard: str, name: str) -> str:
    """The query text of ``dashboards/sql/<dashboard>/<name>.sql``, comments removed, with
    ``${next_phase_branches}`` (the one placeholder that is nextrace's, not Grafana's) filled
    from :func:`contract.nextjs.phase_sql`."""
    text = (resources.files("dashboards") / "sql" / dashboard / f"{name}.sql").read_text("utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()
    return text.replace("${next_phase_branches}", nextjs.phase_sql("NextSpanType"))


def query(dashboard: str, name: str, fmt: Format, ref_id: str = "A") -> ClickHouseQueryBuilder:
    return ClickHouseQueryBuilder(ClickHouseQuery(load_sql(dashboard, name), fmt, ref_id))
