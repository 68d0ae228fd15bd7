"""Replay after a crash: the batch that was in flight is stored once, whatever ClickHouse kept
of it."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from collector.config import (
    BatchSettings,
    CollectorConfig,
    NextjsSettings,
    RetryPolicy,
    StoreConfig,
    WalSettings,
)
from collector.memory import MemoryLimiter
from collector.service import Collector
from tests.builders import make_request, make_span
from tests.support.store_rows import count, forget_rows


def test_the_batch_in_flight_at_a_crash_is_stored_though_its_token_outlived_its_rows(
    store_config: StoreConfig,
):
    config = CollectorConfig(store=store_config, batch=BatchSettings(timeout_s=0.1))
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


def test_a_replay_reports_its_progress(collector: Collector, tmp_path):
    from collector.pipeline.batcher import BatchSpanProcessor
    from collector.pipeline.normalizer import NextjsTraceNormalizer
    from collector.pipeline.replay import replay
    from collector.pipeline.wal import KIND_PROTOBUF, WriteAheadLog
    from collector.storage.exporter import ClickHouseRowExporter, ClickHouseSpanExporter
    from collector.telemetry import CollectorTelemetry

    left = WriteAheadLog(tmp_path, WalSettings())
    left.open()
    for i in range(3):
        left.append(KIND_PROTOBUF, make_request([make_span(f"s{i}")]).SerializeToString())
    left.close()  # as a crash leaves it: three requests acknowledged, none stored
    wal = WriteAheadLog(tmp_path, WalSettings())
    checkpoint = wal.open()
    assert collector.store is not None
    telemetry = CollectorTelemetry()
    processor = BatchSpanProcessor(
        ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True),
        telemetry,
        BatchSettings(timeout_s=0.1),
        memory=MemoryLimiter(1 << 30),
        retry=RetryPolicy(),
        wal=wal,
    )
    normalizer = NextjsTraceNormalizer(
        processor,
        ClickHouseRowExporter(collector.store),
        telemetry,
        NextjsSettings(),
        retry=RetryPolicy(),
    )
    processor.start()
    calls: list[tuple[int, int]] = []
    try:
        replay(
            wal, checkpoint, processor, normalizer, lambda done, total: calls.append((done, total))
        )
        assert calls[0] == (0, 3)
        assert calls[-1] == (3, 3)
        assert calls == sorted(calls)
        assert processor.force_flush()
        assert count(collector) == 3
    finally:
        normalizer.shutdown()
        processor.shutdown()
        wal.close()
