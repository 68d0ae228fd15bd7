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
        .with_panel(panel(NAME, 1, "Ingest rate (spans/s)", "ingest_rate", "timeseries"))
        .with_panel(panel(NAME, 2, "Queue depth (spans)", "queue_depth", "timeseries"))
        .with_panel(panel(NAME, 3, "Insert latency (ms)", "batch_latency", "timeseries"))
        .with_panel(panel(NAME, 4, "Drops and refusals by reason", "drops", "table"))
        .build()
    )
