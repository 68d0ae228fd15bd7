"""Running dashboard queries in tests as Grafana would: frontend variables, then macros."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from collector.service import Collector
from dashboards.build import to_json
from dashboards.frontend import Values, interpolate
from dashboards.macros import QueryContext, expand
from tests.builders import make_request
from tests.conftest import stored

PB = {"Content-Type": "application/x-protobuf"}


HOUR_START_NS = 1_767_261_600 * 1_000_000_000
"""2026-01-01T10:00:00Z, where the tests' traffic starts: the start of an hour, so that traffic
of the next minutes falls in one bucket of any interval up to an hour, whatever the clock says.
Every query gets its time range from the test, never from ``now()``."""


@dataclass
class Traffic:
    collector: Collector
    context: QueryContext
    facts: dict[str, Any] = field(default_factory=dict)


def ingest(client: Any, collector: Collector, base_ns: int, spans: dict[str, list[Any]]) -> Traffic:
    """Send each service's spans through the collector and wait until they are stored."""
    for service, service_spans in spans.items():
        body = make_request(service_spans, service=service).SerializeToString()
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    stored(collector, "SELECT 1")
    moment = dt.datetime.fromtimestamp(base_ns / 1e9, dt.UTC)
    window = dt.timedelta(minutes=5)
    return Traffic(collector, QueryContext(moment - window, moment + window, dt.timedelta(hours=1)))


def stored_traffic(collector: Collector) -> Traffic:
    """The spans the collector has stored, over a time range that covers them all (a minute
    either side, one-minute buckets)."""
    ((first, last),) = stored(collector, "SELECT min(Timestamp), max(Timestamp) FROM otel_traces")
    minute = dt.timedelta(minutes=1)
    start, end = first.replace(tzinfo=dt.UTC) - minute, last.replace(tzinfo=dt.UTC) + minute
    return Traffic(collector, QueryContext(start, end, minute))


def run_sql(traffic: Traffic, variables: tuple[str, ...], sql: str, **chosen: Values) -> list[Any]:
    """Rows of ``sql`` with every variable All except those ``chosen``."""
    values: dict[str, Values] = {name: None for name in variables}
    values.update(chosen)
    return stored(traffic.collector, expand(interpolate(sql, values), traffic.context))


def panel_json(module: ModuleType, title: str) -> dict[str, Any]:
    panels: list[dict[str, Any]] = to_json(module.NAME)["panels"]
    return next(p for p in panels if p["title"] == title)


def run_panel(traffic: Traffic, module: ModuleType, title: str, **chosen: Values) -> list[Any]:
    sql = panel_json(module, title)["targets"][0]["rawSql"]
    return run_sql(traffic, module.VARIABLES, sql, **chosen)
