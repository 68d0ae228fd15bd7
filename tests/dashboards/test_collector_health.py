"""Collector health: its queries and the dropped-spans alert on known collector counters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from collector.admin.self_stats import COLUMNS, TABLE
from dashboards import collector_health
from dashboards.alerts import DROPPED_SPANS
from dashboards.macros import QueryContext
from tests.dashboards.panels import HOUR_START_NS, Traffic, run_panel
from tests.support.alerts import evaluate


@pytest.fixture
def traffic(collector):
    base_ms = HOUR_START_NS // 1_000_000

    def row(
        offset_s: int,
        instance: str,
        exported: int,
        queue: int,
        seconds: float,
        exports: int,
        dropped: dict[str, int],
        refused: dict[str, int],
    ) -> list[Any]:
        return [
            base_ms + offset_s * 1000,
            instance,
            exported,
            exported,
            exported,
            queue,
            dropped,
            refused,
            seconds,
            exports,
        ]

    rows = [
        row(0, "i1", 100, 10, 1.0, 10, {"queue_full": 0}, {"malformed": 1}),
        row(30, "i1", 400, 50, 1.3, 13, {"queue_full": 0}, {"malformed": 2}),
        row(60, "i1", 700, 5, 1.6, 16, {"queue_full": 5}, {"malformed": 3}),
        row(0, "i2", 0, 0, 0.0, 0, {}, {}),
        row(60, "i2", 60, 0, 0.1, 1, {}, {}),
    ]
    assert collector.store is not None
    collector.store.client.insert(TABLE, rows, column_names=COLUMNS)
    moment = dt.datetime.fromtimestamp(base_ms / 1000, dt.UTC)
    context = QueryContext(
        moment - dt.timedelta(minutes=5), moment + dt.timedelta(minutes=5), dt.timedelta(hours=1)
    )
    return Traffic(collector, context, {"at": moment + dt.timedelta(seconds=61)})


def test_ingest_rate_queue_and_insert_latency(traffic):
    rate = {i: r for _, i, r in run_panel(traffic, collector_health, "Ingest rate (spans/s)")}
    assert rate == {"i1": pytest.approx(600 / 3600), "i2": pytest.approx(60 / 3600)}
    queue = {i: q for _, i, q in run_panel(traffic, collector_health, "Queue depth (spans)")}
    assert queue == {"i1": 50, "i2": 0}
    latency = {i: ms for _, i, ms in run_panel(traffic, collector_health, "Insert latency (ms)")}
    assert latency == {"i1": pytest.approx(100.0), "i2": pytest.approx(100.0)}


def test_drops_and_refusals_by_reason(traffic):
    assert run_panel(traffic, collector_health, "Drops and refusals by reason") == [
        ("requests refused", "malformed", 2),
        ("spans dropped", "queue_full", 5),
    ]


def test_the_dropped_spans_alert_names_the_instance_that_dropped(traffic):
    assert evaluate(traffic.collector, DROPPED_SPANS, traffic.facts["at"]) == {"i1": 5.0}
