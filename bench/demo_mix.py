"""The demo's own spans as OTLP export requests, for the ingest benchmark.

``bench/data/deploy_demo_spans.parquet`` (see :mod:`bench.workload`) holds every span one run
of ``nextrace demo --scenario deploy`` stored: the reference server's and its virtual
browsers'. :func:`demo_requests` turns them back into export requests, one per service and
scope for every 50 traces, and repeats them with fresh ids (:func:`bench.recorded.copies`).
Attribute values come back as the store holds them, strings, except the lists the demo sends
(``cache.tags``: 486 of its 6,593 spans), which come back as lists: lists of plain strings,
which the staged insert writes (before, the collector made their rows in Python).
"""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any

import chdb
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from bench.recorded import copies
from bench.workload import TEMPLATE

LISTS = frozenset({"cache.tags", "next.fetch.tags"})  # attributes the demo sends as lists
TRACES_PER_REQUEST = 50
_KINDS = {
    name: number
    for number, name in enumerate(
        ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"]
    )
}
_STATUSES = {"Unset": 0, "Ok": 1, "Error": 2}
_ROWS_SQL = f"""
SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ParentSpanId, SpanName, SpanKind,
       ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration,
       StatusCode, StatusMessage, arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`),
       `Events.Name`, `Events.Attributes`
FROM file('{TEMPLATE}', Parquet)
ORDER BY ServiceName, ScopeName, TraceId, Timestamp
"""


def demo_requests(spans: int) -> list[ExportTraceServiceRequest]:
    """Copies of the demo's spans, as export requests, until they hold at least ``spans``."""
    return copies(_recording(), spans)


def list_valued(requests: list[ExportTraceServiceRequest]) -> int:
    """How many spans of ``requests`` hold a list value."""
    return sum(
        any(kv.value.HasField("array_value") for kv in span.attributes)
        for request in requests
        for resource in request.resource_spans
        for scoped in resource.scope_spans
        for span in scoped.spans
    )


def _recording() -> list[ExportTraceServiceRequest]:
    rows = json.loads(str(chdb.query(_ROWS_SQL, "JSONCompact")))["data"]  # type: ignore[no-untyped-call]
    requests = []
    for (_, scope, version), spans_of in groupby(rows, key=lambda r: (r[6], r[8], r[9])):
        by_trace = [list(trace) for _, trace in groupby(spans_of, key=lambda r: r[1])]
        for first in range(0, len(by_trace), TRACES_PER_REQUEST):
            traces = by_trace[first : first + TRACES_PER_REQUEST]
            request = ExportTraceServiceRequest()
            resource = request.resource_spans.add()
            resource.resource.attributes.extend(_attributes(traces[0][0][7]))  # the service's
            scoped = resource.scope_spans.add()
            scoped.scope.name, scoped.scope.version = scope, version
            for trace in traces:
                scoped.spans.extend(_span(row) for row in trace)
            requests.append(request)
    return requests


def _span(row: list[Any]) -> Span:
    start = int(row[0])
    span = Span(
        trace_id=bytes.fromhex(row[1]),
        span_id=bytes.fromhex(row[2]),
        parent_span_id=bytes.fromhex(row[3]),
        name=row[4],
        kind=_KINDS.get(row[5], 0),  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(row[11]),
        attributes=_attributes(row[10]),
        status=Status(code=_STATUSES.get(row[12], 0), message=row[13]),  # type: ignore[arg-type]
    )
    for at, name, attributes in zip(row[14], row[15], row[16], strict=True):
        span.events.add(time_unix_nano=int(at), name=name, attributes=_attributes(attributes))
    return span


def _attributes(stored: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(key, value)) for key, value in stored.items()]


def _value(key: str, value: str) -> AnyValue:
    if key in LISTS and value.startswith("["):
        items = [AnyValue(string_value=str(item)) for item in json.loads(value)]
        return AnyValue(array_value=ArrayValue(values=items))
    return AnyValue(string_value=value)
