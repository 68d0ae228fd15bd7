"""Small builders of OTLP messages, and of the ids of the SDK's spans, for tests."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span
from opentelemetry.sdk.trace.id_generator import IdGenerator


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(
            KeyValue(key=k, value=any_value(v)) for k, v in value.items()
        )
        return out
    return AnyValue(string_value=str(value))


def attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]


def make_span(
    name: str = "GET /",
    *,
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    parent: bytes = b"",
    start_ns: int | None = None,
    duration_ns: int = 1_000_000,
    kind: int = Span.SPAN_KIND_SERVER,
    attrs: dict[str, Any] | None = None,
) -> Span:
    start = start_ns if start_ns is not None else time.time_ns()
    return Span(
        trace_id=trace_id if trace_id is not None else os.urandom(16),
        span_id=span_id if span_id is not None else os.urandom(8),
        parent_span_id=parent,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration_ns,
        attributes=attributes(attrs or {}),
    )


def make_request(
    spans: list[Span],
    service: str = "svc",
    *,
    scope: str = "tests",
    resource: dict[str, Any] | None = None,
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs: ResourceSpans = request.resource_spans.add()
    rs.resource.attributes.extend(attributes({"service.name": service, **(resource or {})}))
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    ss.scope.version = "1.0"
    ss.spans.extend(spans)
    return request


def insert_spans(client: Any, spans: list[Span], database: str | None = None) -> None:
    """Store ``spans`` straight into ``otel_traces`` with a driver insert of the columns the
    contrib exporter names, as another collector writing the store would (no pipeline)."""
    from collector.consumer import COLUMN_NAMES
    from collector.pipeline.translator import translate

    client.insert(
        "otel_traces",
        translate(make_request(spans)).spans.columns,
        database=database,
        column_names=list(COLUMN_NAMES),
        column_oriented=True,
    )


class ReplayedIds(IdGenerator):
    """A tracer's ids from the random source ``rng`` (hypothesis's, or a seeded one), so that
    examples replay and two tracers given equal sources make the same ids; random or not, as
    root spans' flags say."""

    def __init__(self, rng: Any, random_ids: bool = False) -> None:
        self._rng = rng
        self._random_ids = random_ids

    def is_trace_id_random(self) -> bool:
        return self._random_ids

    def generate_span_id(self) -> int:
        return int(self._rng.getrandbits(64)) or 1

    def generate_trace_id(self) -> int:
        return int(self._rng.getrandbits(128)) or 1
