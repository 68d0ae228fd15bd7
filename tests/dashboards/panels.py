"""Running dashboard queries in tests as Grafana would: frontend variables, then macros."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from collector.service import Collector
from dashboards.build import DASHBOARDS, to_json
from dashboards.common import BASE_URL
from dashboards.frontend import Values, data_link, interpolate
from dashboards.macros import QueryContext, expand
from tests.builders import make_request
from tests.conftest import GRAFANA_SCHEMAS, stored

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


def dashboard_schema() -> dict[str, Any]:
    """Grafana's dashboard JSON Schema (from the grafana-foundation-sdk), with two fields as
    Grafana's own CUE schema has them, any value (``value?: _``, ``options?: _``), where the
    generated JSON Schema says object: an override's value (a unit's string, a list of links)
    and its matcher's options (the field name ``byName`` matches)."""
    schema: dict[str, Any] = json.loads((GRAFANA_SCHEMAS / "dashboard.jsonschema.json").read_text())
    definitions = schema["definitions"]
    definitions["DynamicConfigValue"]["properties"]["value"] = {}
    definitions["MatcherConfig"]["properties"]["options"] = {}
    return schema


def follow_links(
    query: Callable[[str], Any], get: Callable[[str], Any], base_url: str, context: QueryContext
) -> dict[str, int]:
    """Follow every data link to nextrace's pages of every panel, for every row the panel's
    query (``query``: a store's ``client.query``) gives in ``context``, with ``get`` from
    ``base_url`` (the dashboards' base URL variable): each page answers 200 and shows what
    was clicked, a trace's own page or a route's slow list (with its traces for one route of
    the panel at least: a route only prefetched, or a webhook's, has none). Returns how many
    links of each panel were followed."""
    everything: dict[str, Values] = {"service": None, "route": None, "build": None}
    variables = {
        BASE_URL: base_url,
        "__from": str(int(context.time_from.timestamp() * 1000)),
        "__to": str(int(context.time_to.timestamp() * 1000)),
    }
    followed: dict[str, int] = {}
    for name in DASHBOARDS:
        for panel in to_json(name)["panels"]:
            links = {
                o["matcher"]["options"]: p["value"]
                for o in panel["fieldConfig"]["overrides"]
                for p in o["properties"]
                if p["id"] == "links"
            }
            if not links:
                continue
            result = query(expand(interpolate(panel["targets"][0]["rawSql"], everything), context))
            listing = 0  # route pages that list traces
            for column, its_links in links.items():
                for row in result.result_rows:
                    value = str(row[result.column_names.index(column)])
                    for link in its_links:
                        url = data_link(link["url"], variables, value)
                        if url.startswith("/explore?"):
                            explore(query, url, value)
                            continue
                        page = get(url.removeprefix(base_url))
                        assert page.status_code == 200, (panel["title"], url, page.text)
                        assert html.escape(value, quote=False) in page.text, (panel["title"], url)
                        listing += column == "route" and "href='trace/" in page.text
                        followed[panel["title"]] = followed.get(panel["title"], 0) + 1
            if "route" in links and result.result_rows:
                assert listing, f"{panel['title']}: no route's slow list lists a trace"
    return followed


def explore(query: Callable[[str], Any], url: str, value: str) -> None:
    """Run the query an Explore ``url`` opens as Grafana's backend would (its macros, over the
    pane's time range), for the trace id ``value`` clicked: it shows that trace's spans."""
    panes = json.loads(parse_qs(urlsplit(url).query)["panes"][0])
    [pane] = panes.values()
    [target] = pane["queries"]
    moment = {k: dt.datetime.fromtimestamp(int(v) / 1000, dt.UTC) for k, v in pane["range"].items()}
    result = query(expand(target["rawSql"], QueryContext(moment["from"], moment["to"])))
    assert target["queryType"] == "traces", url
    rows: list[tuple[Any, ...]] = result.result_rows
    at = result.column_names.index("traceID")
    assert rows, f"Grafana's trace view shows no span of {value}"
    assert all(row[at] == value for row in rows), (url, value)
