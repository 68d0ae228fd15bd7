"""Replay after a crash: the batch that was in flight is stored once, whatever ClickHouse kept
of it."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from collector.config import CollectorConfig, StoreConfig
from collector.service import Collector
from tests.builders import make_request, make_span
from tests.collector.test_exporter import count, forget_rows


def test_the_batch_in_flight_at_a_crash_is_stored_though_its_token_outlived_its_rows(
    store_config: StoreConfig,
):
    config = CollectorConfig(store=store_config, batch_timeout_s=0.1)
    first = Collector(config)
    try:
        with TestClient(first.start(), base_url="http://localhost:4318") as client:
            spans = [make_span(f"s{i}", attrs={"cache.layer": "data"}) for i in range(3)]
            answer = client.post(
                "/v1/traces",
                content=make_request(spans).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert answer.status_code == 200
        assert first.processor is not None
        assert first.processor.force_flush()
        assert count(first) == 3
        # The crash came after ClickHouse recorded the batch's token, before its rows were
        # committed, and before the collector recorded the batch as stored.
        forget_rows(first)
    finally:
        first.shutdown()
    checkpoint = config.wal_path / "checkpoint.json"
    checkpoint.write_text(json.dumps({"committed": 0, "batch": [1, 1], "keep_from": 1}))
    restarted = Collector(config)
    restarted.start()
    try:
        assert count(restarted) == 3
        assert count(restarted, "SELECT count() FROM cache_events") == 3
    finally:
        restarted.shutdown()
