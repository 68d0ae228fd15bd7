"""The collector stores its own counters in ClickHouse, for the Collector health dashboard."""

from __future__ import annotations

from starlette.testclient import TestClient

from collector.config import BatchSettings, CollectorConfig
from collector.service import Collector
from tests.builders import make_request, make_span
from tests.support.waiting import wait_until

PB = {"Content-Type": "application/x-protobuf"}


def test_counters_are_stored_periodically_and_once_more_at_shutdown(store_config):
    collector = Collector(
        CollectorConfig(
            store=store_config, batch=BatchSettings(timeout_s=0.1), stats_interval_s=0.2
        )
    )
    collector.start()
    assert collector.app is not None
    assert collector.store is not None
    with TestClient(collector.app, base_url="http://localhost:4318") as client:
        client.post(
            "/v1/traces",
            content=make_request([make_span() for _ in range(7)]).SerializeToString(),
            headers=PB,
        )
        client.post("/v1/traces", content=b"\xff", headers=PB)
        store = collector.store
        query = (
            "SELECT SpansExported, RequestsRejected['malformed'] "
            "FROM nextrace_collector_stats WHERE SpansExported = 7"
        )
        wait_until(lambda: store.client.query(query).result_rows, "the counters are written")
        assert store.client.query(query).result_rows[0] == (7, 1)
    before = store.client.query("SELECT count() FROM nextrace_collector_stats").result_rows[0][0]
    collector.shutdown()
    collector.shutdown()
    from collector.storage.store import open_store

    reopened = open_store(store_config)
    try:
        after = reopened.client.query(
            "SELECT count(), argMax(Exports, Timestamp) > 0, argMax(QueueSpans, Timestamp) "
            "FROM nextrace_collector_stats"
        ).result_rows[0]
        assert after[0] >= before + 1  # the final snapshot
        assert after[1:] == (True, 0)
    finally:
        reopened.close()
