"""The wire encoder writes, byte for byte, the request the OpenTelemetry SDK's encoder writes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from instrumented_server.otlp_wire import OTLPWireEncoder, OTLPWireSpanExporter
from tests.builders import ReplayedIds

INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=80)
SCALAR = st.one_of(TEXT, st.booleans(), INT64, st.floats(allow_nan=False))
VALUE = st.one_of(
    SCALAR,
    st.lists(TEXT, max_size=4).map(tuple),
    st.lists(INT64, max_size=4),
    st.lists(st.booleans(), max_size=3),
    st.lists(st.floats(allow_nan=False), max_size=3),
)
ATTRIBUTES = st.dictionaries(st.text(max_size=20), VALUE, max_size=8)
IDS = st.integers(1, 2**64 - 1)


@st.composite
def spans(draw: st.DrawFn) -> list[ReadableSpan]:
    kept = InMemorySpanExporter()
    first = Resource.create({"service.name": draw(TEXT), **draw(ATTRIBUTES)})
    other = Resource({}, schema_url=draw(st.sampled_from(["", "https://opentelemetry.io/s/1"])))
    # An equal resource in another object is grouped with the first, as the SDK groups it.
    resources = [first, draw(st.sampled_from([other, Resource(first.attributes)]))]
    for resource in resources:
        provider = TracerProvider(resource=resource, id_generator=ReplayedIds(draw(st.randoms())))
        provider.add_span_processor(SimpleSpanProcessor(kept))
        tracers = [
            provider.get_tracer("nextrace.instrumented_server"),
            provider.get_tracer(draw(TEXT), draw(st.sampled_from([None, "1.2"]))),
        ]
        for _ in range(draw(st.integers(0, 4))):
            tracer = draw(st.sampled_from(tracers))
            parent = None
            if draw(st.booleans()):
                remote = SpanContext(
                    draw(IDS) << 64 | draw(IDS),
                    draw(IDS),
                    is_remote=draw(st.booleans()),
                    trace_flags=TraceFlags(1),
                    trace_state=TraceState(draw(st.sampled_from([[], [("vendor", "a1")]]))),
                )
                parent = set_span_in_context(NonRecordingSpan(remote))
            links = [
                Link(
                    SpanContext(draw(IDS), draw(IDS), is_remote=draw(st.booleans())),
                    draw(ATTRIBUTES),
                )
                for _ in range(draw(st.integers(0, 2)))
            ]
            span = tracer.start_span(
                draw(TEXT),
                context=parent,
                kind=draw(st.sampled_from(list(SpanKind))),
                attributes=draw(ATTRIBUTES),
                links=links,
            )
            for _ in range(draw(st.integers(0, 2))):
                span.add_event(draw(TEXT), draw(ATTRIBUTES))
            if draw(st.booleans()):
                span.set_status(Status(StatusCode.ERROR, draw(st.sampled_from([None, "boom"]))))
            span.end()
    return list(kept.get_finished_spans())


@settings(max_examples=300, deadline=None)
@given(spans())
def test_every_span_is_encoded_as_the_sdk_encodes_it(batch: list[ReadableSpan]) -> None:
    assert OTLPWireEncoder().encode(batch) == encode_spans(batch).SerializeToString()


def test_remembered_attributes_keep_their_type_and_an_int_beyond_int64_is_left_out() -> None:
    kept = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("t")
    for value in (True, 1, "1", 2**64):
        tracer.start_span("s", attributes={"a": value}).end()
    encoder = OTLPWireEncoder()
    for span in kept.get_finished_spans():  # one at a time, so that the cache serves the later ones
        assert encoder.encode([span]) == encode_spans([span]).SerializeToString()
    request = ExportTraceServiceRequest.FromString(encoder.encode(kept.get_finished_spans()))
    values = [
        [kv.value for kv in span.attributes]
        for span in request.resource_spans[0].scope_spans[0].spans
    ]
    assert [[v.WhichOneof("value") for v in span] for span in values] == [
        ["bool_value"],
        ["int_value"],
        ["string_value"],
        [],  # 2**64 does not fit in OTLP's int64
    ]


def test_the_exporter_sends_the_wire_encoding_with_the_sdks_headers(monkeypatch) -> None:
    received: list[tuple[bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers.get("Authorization", "")))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # The SDK's own variables still apply: the collector's token travels this way.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20s3cret")
        exporter = OTLPWireSpanExporter(
            endpoint=f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        )
        assert exporter.encodes_on_the_wire
        kept = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(kept))
        provider.get_tracer("t").start_span("s", attributes={"nextrace.phase": "render"}).end()
        assert exporter.export(kept.get_finished_spans()) == SpanExportResult.SUCCESS
        exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
    finally:
        server.shutdown()
    assert received == [
        (encode_spans(kept.get_finished_spans()).SerializeToString(), "Bearer s3cret")
    ]
