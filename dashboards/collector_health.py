"""Dashboard 5, Collector health: is the collector keeping up, and is it losing anything.

Ingest rate, queue depth, insert latency, and spans dropped or requests refused
by reason, from the counters the collector stores in ``nextrace_collector_stats``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import base, panel

NAME = "collector_health"
UID = "nextrace-collector-health"
VARIABLES: tuple[str, ...] = ()


def build() -> model.Dashboard:
    return (
        base("Collector health", UID, ["collector"])
        .with_panel(
            panel(
                NAME,
                1,
                "Ingest rate (spans/s)",
                "ingest_rate",
                "timeseries",
                unit="ops",
                answers="Spans each collector instance received per second.",
                act="a drop to zero while apps run: their exporters cannot reach the "
                "collector (read their logs, and Drops and refusals).",
            )
        )
        .with_panel(
            panel(
                NAME,
                2,
                "Queue depth (spans)",
                "queue_depth",
                "timeseries",
                unit="short",
                answers="Spans accepted but not yet stored, per collector instance.",
                act="a queue that keeps growing: the store cannot keep up (read Insert latency "
                "and the store's disk); at its bound the collector answers 503.",
            )
        )
        .with_panel(
            panel(
                NAME,
                3,
                "Insert latency (ms)",
                "batch_latency",
                "timeseries",
                unit="ms",
                thresholds=((None, "green"), (500, "orange"), (2000, "red")),
                answers="How long each insert of a batch into ClickHouse took.",
                act="seconds per insert: the store is overloaded or its disk is slow or full "
                "(docs/scaling.md says how many shards a rate needs).",
            )
        )
        .with_panel(
            panel(
                NAME,
                4,
                "Drops and refusals by reason",
                "drops",
                "table",
                unit="short",
                thresholds=((None, "green"), (1, "red")),
                thresholds_on="count",
                answers="Spans dropped and requests refused, by reason. Empty is good.",
                act="each reason names its fix in docs/collector.md (Drops); throttled or "
                "log full: the store is behind, read Queue depth.",
            )
        )
        .build()
    )
