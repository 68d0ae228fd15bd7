"""The OTLP/HTTP receiver, end to end through the pipeline into real chDB."""

from __future__ import annotations

import gzip
import json
import os

from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.config import BatchSettings, CollectorConfig
from collector.service import Collector
from tests.builders import make_request, make_span
from tests.conftest import stored

PB = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def test_protobuf_export_is_stored_and_answered_in_protobuf(client, collector):
    request = make_request([make_span("GET /a"), make_span("GET /b")])
    response = client.post("/v1/traces", content=request.SerializeToString(), headers=PB)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    reply = ExportTraceServiceResponse.FromString(response.content)
    assert not reply.HasField("partial_success")
    assert stored(collector, "SELECT SpanName FROM otel_traces ORDER BY SpanName") == [
        ("GET /a",),
        ("GET /b",),
    ]


def test_json_export_with_hex_ids_is_stored(client, collector):
    span = make_span("RSC GET /products/[id]", parent=bytes.fromhex("0102030405060708"))
    body = json_format.MessageToDict(make_request([span]))
    scope_span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for key in ("traceId", "spanId", "parentSpanId"):  # OTLP/JSON ids are hex, not base64
        scope_span[key] = {
            "traceId": span.trace_id,
            "spanId": span.span_id,
            "parentSpanId": span.parent_span_id,
        }[key].hex()
    response = client.post("/v1/traces", content=json.dumps(body), headers=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    assert stored(collector, "SELECT TraceId, SpanId, ParentSpanId FROM otel_traces") == [
        (span.trace_id.hex(), span.span_id.hex(), "0102030405060708")
    ]


def test_gzip_bodies_are_accepted(client, collector):
    body = gzip.compress(make_request([make_span("gz")]).SerializeToString())
    response = client.post("/v1/traces", content=body, headers={**PB, "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert stored(collector, "SELECT count() FROM otel_traces WHERE SpanName = 'gz'") == [(1,)]


def test_spans_with_unusable_ids_are_rejected_with_partial_success(client, collector):
    good = make_span("good")
    bad_trace = make_span("bad-trace", trace_id=bytes(16))
    bad_span = make_span("bad-span", span_id=b"\x01\x02")
    request = make_request([good, bad_trace, bad_span])
    response = client.post("/v1/traces", content=request.SerializeToString(), headers=PB)
    assert response.status_code == 200
    reply = ExportTraceServiceResponse.FromString(response.content)
    assert reply.partial_success.rejected_spans == 2
    assert "bad-trace" in reply.partial_success.error_message
    assert stored(collector, "SELECT SpanName FROM otel_traces") == [("good",)]
    assert collector.health()["spans_dropped"]["invalid_span"] == 2


def _assert_nothing_lost(client, collector, expected: int) -> None:
    # A good request after the bad one is still accepted, and nothing earlier is lost or doubled.
    response = client.post(
        "/v1/traces", content=make_request([make_span("after")]).SerializeToString(), headers=PB
    )
    assert response.status_code == 200
    assert stored(collector, "SELECT count(), uniqExact(SpanId) FROM otel_traces") == [
        (expected + 1, expected + 1)
    ]


def test_malformed_protobuf_gets_400_with_a_status_and_loses_nothing(client, collector):
    first = make_request([make_span("before") for _ in range(3)]).SerializeToString()
    assert client.post("/v1/traces", content=first, headers=PB).status_code == 200
    truncated = first[: len(first) // 2]
    response = client.post("/v1/traces", content=truncated, headers=PB)
    assert response.status_code == 400
    status = Status.FromString(response.content)
    assert "malformed protobuf" in status.message
    _assert_nothing_lost(client, collector, 3)
    assert collector.health()["requests_rejected"]["malformed"] == 1


def test_malformed_and_wrongly_typed_json_get_400(client, collector):
    for body, hint in [
        ("{not json", "malformed JSON"),
        ('{"resourceSpans": 5}', "must be an array"),
        ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "is not hex"),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 7, "kind": "x"}]}]}]}',
            "malformed OTLP/JSON",
        ),
        ("[1, 2]", "must be a JSON object"),
    ]:
        response = client.post("/v1/traces", content=body, headers=JSON)
        assert response.status_code == 400, body
        assert hint in response.json()["message"], (body, response.json())
    _assert_nothing_lost(client, collector, 0)


def test_bad_gzip_is_400(client):
    response = client.post(
        "/v1/traces", content=b"not gzip", headers={**PB, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 400
    assert "gzip" in Status.FromString(response.content).message


def test_unsupported_content_type_and_encoding_get_415(client, collector):
    response = client.post("/v1/traces", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]
    response = client.post("/v1/traces", content=b"x", headers={**PB, "Content-Encoding": "br"})
    assert response.status_code == 415
    assert collector.health()["requests_rejected"]["unsupported_media_type"] == 2


def test_bodies_over_the_limit_get_413(store_config):
    instance = Collector(CollectorConfig(store=store_config, max_body_bytes=2000))
    instance.start()
    try:
        from starlette.testclient import TestClient

        assert instance.app is not None
        with TestClient(instance.app, base_url="http://localhost:4318") as small:
            big = make_request([make_span("x" * 100) for _ in range(50)]).SerializeToString()
            assert small.post("/v1/traces", content=big, headers=PB).status_code == 413
            # A small gzip body that inflates past the limit is refused too.
            bomb = gzip.compress(b"\x00" * 100_000)
            response = small.post(
                "/v1/traces", content=bomb, headers={**PB, "Content-Encoding": "gzip"}
            )
            assert response.status_code == 413
            assert "limit" in Status.FromString(response.content).message
            ok = make_request([make_span("fits")]).SerializeToString()
            assert small.post("/v1/traces", content=ok, headers=PB).status_code == 200
        assert stored(instance, "SELECT SpanName FROM otel_traces") == [("fits",)]
        assert instance.health()["requests_rejected"]["too_large"] == 2
    finally:
        instance.shutdown()


def test_a_full_queue_answers_503_with_retry_after_and_keeps_what_it_accepted(store_config):
    instance = Collector(
        CollectorConfig(
            store=store_config, batch=BatchSettings(max_spans=5, max_queue_spans=5, timeout_s=30)
        )
    )
    instance.start()
    assert instance.processor is not None
    try:
        from starlette.testclient import TestClient

        assert instance.app is not None
        with TestClient(instance.app, base_url="http://localhost:4318") as tc:
            # The batch is not due for 30 s, so the first request's spans stay queued.
            first = make_request([make_span("kept") for _ in range(4)]).SerializeToString()
            assert tc.post("/v1/traces", content=first, headers=PB).status_code == 200
            over = make_request([make_span("over") for _ in range(2)]).SerializeToString()
            response = tc.post("/v1/traces", content=over, headers=PB)
            assert response.status_code == 503
            assert response.headers["Retry-After"].isdigit()
            assert "queue is full" in Status.FromString(response.content).message
        assert stored(instance, "SELECT SpanName, count() FROM otel_traces GROUP BY SpanName") == [
            ("kept", 4)
        ]
        health = instance.health()
        # Refused with 503, so the sender still has them: counted as refused, not dropped.
        assert health["spans_refused"]["queue_full"] == 2
        assert sum(health["spans_dropped"].values()) == 0
        assert health["requests_rejected"]["throttled"] == 1
    finally:
        instance.shutdown()


def test_metrics_and_healthz_expose_the_counts(client, collector):
    client.post("/v1/traces", content=b"\xff\xff", headers=PB)
    client.post("/v1/traces", content=make_request([make_span()]).SerializeToString(), headers=PB)
    stored(collector, "SELECT 1")
    metrics = client.get("/metrics").text
    assert 'nextrace_collector_requests_rejected_total{reason="malformed"} 1.0' in metrics
    assert "nextrace_collector_spans_exported_total 1.0" in metrics
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["spans_exported"] == 1


def test_a_span_with_an_impossible_time_costs_only_itself(client, collector):
    good = [make_span(f"good{i}") for i in range(3)]
    bad = make_span("bad")
    bad.start_time_unix_nano = 18446744073709551615
    other = make_span("event")
    other.events.add(time_unix_nano=2**63, name="far")
    answer = client.post(
        "/v1/traces", content=make_request([*good, bad, other]).SerializeToString(), headers=PB
    )
    assert answer.status_code == 200
    reply = ExportTraceServiceResponse.FromString(answer.content)
    assert reply.partial_success.rejected_spans == 2
    assert "2262" in reply.partial_success.error_message
    assert stored(collector, "SELECT count() FROM otel_traces") == [(3,)]
    assert collector.health()["spans_dropped"]["invalid_span"] == 2


def test_a_request_spread_over_many_days_is_stored_whole(client, collector):
    day = 86_400 * 10**9
    spans = [make_span(f"d{i}", start_ns=1_700_000_000 * 10**9 + i * day) for i in range(150)]
    answer = client.post("/v1/traces", content=make_request(spans).SerializeToString(), headers=PB)
    assert answer.status_code == 200
    assert stored(collector, "SELECT count(), uniqExact(toDate(Timestamp)) FROM otel_traces") == [
        (150, 150)
    ]
    assert sum(collector.health()["spans_dropped"].values()) == 0


def test_every_gzip_member_is_decoded(client, collector):
    first = make_request([make_span("one")]).SerializeToString()
    second = make_request([make_span("two")]).SerializeToString()
    body = gzip.compress(first) + gzip.compress(second)  # RFC 1952: members back to back
    answer = client.post("/v1/traces", content=body, headers={**PB, "Content-Encoding": "gzip"})
    assert answer.status_code == 200
    assert stored(collector, "SELECT SpanName FROM otel_traces ORDER BY SpanName") == [
        ("one",),
        ("two",),
    ]


def test_deeply_nested_json_is_400(client):
    body = '{"resourceSpans": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = client.post("/v1/traces", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400


def test_a_flood_of_bad_requests_is_one_line_in_the_log(client, caplog):
    for _ in range(50):
        client.post("/v1/traces", content=b"\x00garbage", headers=PB)
    lines = [r.getMessage() for r in caplog.records if "refused an OTLP request" in r.getMessage()]
    assert len(lines) == 1
    assert client.get("/healthz").json()["requests_rejected"]["malformed"] == 50


def test_a_log_that_cannot_be_synced_answers_once_the_spans_are_stored(client, monkeypatch):
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    body = make_request([make_span("unsynced")]).SerializeToString()
    answer = client.post("/v1/traces", content=body, headers=PB)
    # The spans were in the pipeline: a 503 would have them sent, and stored, again.
    assert answer.status_code == 200
    assert client.get("/healthz").json()["spans_exported"] == 1
