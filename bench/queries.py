"""How fast every dashboard panel, variable, annotation and alert answers on a large store.

A store is filled with the demo's own traffic copied over 24 hours (``bench/workload.py``),
through the collector's schema. Every query the dashboards and alert rules send is then
expanded as Grafana expands it (``dashboards/frontend.py``: every variable All, then
``dashboards/macros.py`` with the dashboard's time range and interval; alert rules get only the
macros, over their own relative range) and run ``--repeat`` times, per run, over the last 24
hours and over the last hour. Grafana's trace-by-id query
(``dashboards/sql/common/trace.sql``) runs on a sample of random traces.

Printed, and written to ``bench/results/queries-<spans>.json``: per query, p50 and p95 of each
run and their median over the runs with the lowest and highest p50; per dashboard, the sum of
its queries' p50s (what one refresh costs the store when every panel loads).

Run: ``PYTHONPATH=. python -m bench.queries [--spans 10000000] [--runs 3] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import across_runs, percentiles, timed, write_result
from bench.workload import fill
from collector.config import StoreConfig
from collector.storage.store import ClickHouseStore, open_store
from dashboards.alerts import ALERTS
from dashboards.build import DASHBOARDS, to_json
from dashboards.frontend import interpolate
from dashboards.macros import QueryContext, expand

RESULTS = Path(__file__).parent / "results"
GRAFANA_TRACE = Path(__file__).parent.parent / "dashboards/sql/common/trace.sql"
RANGES = {
    # Grafana's interval for a panel about 1,000 pixels wide, rounded as Grafana rounds it.
    "24h": (dt.timedelta(hours=24), dt.timedelta(minutes=1)),
    "1h": (dt.timedelta(hours=1), dt.timedelta(seconds=5)),
}


@dataclass(frozen=True)
class Query:
    """One query as ClickHouse receives it, and whose it is."""

    name: str  # "<dashboard>/<panel title>", "<dashboard>/variable <name>", "alert/<uid>"
    dashboard: str  # the dashboard it loads with, or "alerts"
    sql: str


def dashboard_queries(end: dt.datetime, span: str) -> Iterator[Query]:
    """Every query of every dashboard, over the range ``span`` before ``end``."""
    length, interval = RANGES[span]
    context = QueryContext(end - length, end, interval)
    for name in DASHBOARDS:
        document = to_json(name)
        # The query variables: a text box (the pages' base URL) is no query.
        variables = [v for v in document["templating"]["list"] if v["type"] == "query"]
        grafana = functools.partial(
            _as_grafana_sends_it, {v["name"]: None for v in variables}, context
        )
        for variable in variables:
            yield Query(f"{name}/variable {variable['name']}", name, grafana(variable["query"]))
        for annotation in document["annotations"]["list"]:
            sql = annotation["target"]["rawSql"]
            yield Query(f"{name}/annotation {annotation['name']}", name, grafana(sql))
        for panel in document["panels"]:
            for target in panel.get("targets", []):
                title = panel["title"] + ("" if target["refId"] == "A" else f" {target['refId']}")
                yield Query(f"{name}/{title}", name, grafana(target["rawSql"]))


def _as_grafana_sends_it(
    variables: dict[str, list[str] | None], context: QueryContext, sql: str
) -> str:
    return expand(interpolate(sql, variables), context)


def alert_queries(end: dt.datetime) -> Iterator[Query]:
    """Every alert rule's query A over its own relative range, as Grafana evaluates it."""
    for spec in ALERTS:
        context = QueryContext(end - dt.timedelta(seconds=spec.range_s), end)
        yield Query(f"alert/{spec.uid}", "alerts", expand(spec.sql(), context))


def trace_queries(store: ClickHouseStore, count: int) -> list[str]:
    """Grafana's trace-by-id query for ``count`` random traces."""
    sql = GRAFANA_TRACE.read_text("utf-8")
    rows = store.client.query(
        "SELECT TraceId FROM otel_traces_trace_id_ts ORDER BY cityHash64(TraceId) "
        f"LIMIT {int(count)}"
    ).result_rows
    return [sql.replace("${trace_id}", row[0]) for row in rows]


def run(store: ClickHouseStore, sql: str) -> bytes:
    """The answer to ``sql`` as Grafana's plugin would receive it, undecoded."""
    return bytes(store.client.raw_query(sql, fmt="JSONCompact"))


def one_run(
    store: ClickHouseStore, queries: list[Query], traces: list[str], repeat: int
) -> dict[str, dict[str, float]]:
    def timings(sqls: list[str]) -> dict[str, float]:
        return percentiles([timed(functools.partial(run, store, sql)) for sql in sqls])

    times = {q.name: timings([q.sql] * repeat) for q in queries}
    times["trace by id"] = timings(traces)
    return times


def dashboard_totals(queries: list[Query], summary: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Per dashboard, the sum of its queries' median p50s, in milliseconds."""
    totals: dict[str, float] = {}
    for query in queries:
        totals[query.dashboard] = round(
            totals.get(query.dashboard, 0.0) + summary[query.name]["p50_ms_median"], 1
        )
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--traces", type=int, default=30, help="traces looked up by id")
    args = parser.parse_args()
    result: dict[str, Any] = {"repeat": args.repeat, "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
        store = open_store(StoreConfig.from_dsn(f"chdb://{tmp}/store"))
        try:
            print(f"filling a store with {args.spans:,} spans over 24 hours", flush=True)
            result["spans"] = fill(store, args.spans)
            end = dt.datetime.now(dt.UTC)
            traces = trace_queries(store, args.traces)
            for span in RANGES:
                queries = [*dashboard_queries(end, span), *alert_queries(end)]
                one_run(store, queries, traces[:3], 1)  # warm the caches the runs share
                runs = []
                for index in range(args.runs):
                    runs.append(one_run(store, queries, traces, args.repeat))
                    print(f"{span} run {index + 1} done", flush=True)
                summary = across_runs(runs)
                result[span] = {
                    "queries": summary,
                    "dashboards_ms": dashboard_totals(queries, summary),
                    "slowest": sorted(summary, key=lambda n: -summary[n]["p95_ms_median"])[:8],
                }
                for name in result[span]["slowest"]:
                    print(f"  {span} {name}: {summary[name]}")
                print(f"  {span} dashboards: {result[span]['dashboards_ms']}", flush=True)
        finally:
            store.close()
    write_result(RESULTS / f"queries-{args.spans // 1_000_000}M.json", "queries", result)


if __name__ == "__main__":
    main()
