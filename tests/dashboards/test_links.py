"""Every data link of every panel, followed as Grafana would follow it (the cell's value and the
base URL variable filled in, dashboards/frontend.py) to a running collector's pages, on a
recorded real Next.js 16 run: each opens, and shows the trace or the route clicked.
tests/e2e/test_demo.py follows them on the demo's run, which fills the browser's panels."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.service import Collector
from dashboards.clickhouse import load_sql
from dashboards.macros import QueryContext
from investigate.pages import store_pages
from tests.conftest import LOCAL, collector_holding, loopback_client, stored
from tests.dashboards.panels import follow_links
from tests.support.captures import expected_spans

RUN = Path(__file__).resolve().parents[1] / "data" / "cache-components-run"


@pytest.fixture(scope="module")
def serving(chdb_path: Path) -> Iterator[Collector]:
    """A collector with the pages, holding the recorded Cache Components run."""
    with collector_holding(chdb_path, RUN, pages=store_pages) as collector:
        yield collector


def test_every_link_opens_the_page_of_what_was_clicked(serving: Collector):
    assert serving.app is not None
    assert serving.store is not None
    ((first, last),) = stored(serving, "SELECT min(Timestamp), max(Timestamp) FROM otel_traces")
    context = QueryContext(
        first.replace(tzinfo=dt.UTC) - dt.timedelta(minutes=5),
        last.replace(tzinfo=dt.UTC) + dt.timedelta(minutes=5),
    )
    with loopback_client(serving) as client:
        followed = follow_links(serving.store.client.query, client.get, LOCAL, context)
    # The panels a server-side run fills; the browser's are followed on the demo's run.
    assert {"Top routes by misses", "Request latency and TTFB per route", "Slowest traces"} <= set(
        followed
    ), followed


def test_grafanas_trace_query_returns_every_span_the_app_exported_of_each_trace(
    serving: Collector,
):
    """The trace query reads a trace by its 15-minute buckets, from the trace-id table, and its
    id: for every trace of the recorded real Next.js run, exactly the spans the app exported
    (the run's own export files are the truth)."""
    exported: dict[str, set[str]] = defaultdict(set)
    for trace_id, span_id in expected_spans(RUN):
        exported[trace_id].add(span_id)
    sql = load_sql("common", "trace")
    assert len(exported) > 10
    for trace_id, span_ids in exported.items():
        rows = stored(serving, sql.replace("${trace_id}", trace_id))
        assert {row[1] for row in rows} == span_ids, trace_id
