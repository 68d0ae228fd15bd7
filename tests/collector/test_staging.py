"""The staged path (ClickHouse reads the OTLP bodies) stores exactly the rows that the
columnar path (translate() in Python) stores."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.pipeline.translator import screen, translate
from collector.storage.exporter import ClickHouseSpanExporter
from collector.storage.migrations import load_sql
from collector.storage.staging import StagedProtobufInsert
from collector.storage.store import ClickHouseStore, open_store
from collector.telemetry import CollectorTelemetry
from tests.builders import any_value, make_request, make_span
from tests.conftest import running_collector
from tests.support.waiting import wait_until

# Every column, with times in nanoseconds: the two paths must agree to the last digit.
ROWS_SQL = """
SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ParentSpanId, TraceState, SpanName,
       SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes,
       Duration, StatusCode, StatusMessage,
       arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Events.Name, Events.Attributes,
       Links.TraceId, Links.SpanId, Links.TraceState,
       Links.Attributes
FROM `{database}`.otel_traces
"""


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[ClickHouseStore]:
    """One store for every example: a database per example would take most of the time."""
    opened = open_store(StoreConfig.from_dsn(f"chdb://{chdb_path}?database=staging_t"))
    yield opened
    opened.client.command("DROP DATABASE IF EXISTS staging_t SYNC")
    opened.close()


def _rows(store: ClickHouseStore) -> list[tuple[Any, ...]]:
    # Sorted on every column: two spans may share their ids and times, and the store keeps
    # no order between them.
    rows = store.client.query(ROWS_SQL.format(database="staging_t")).result_rows
    return sorted((tuple(row) for row in rows), key=repr)


def _clear(store: ClickHouseStore) -> None:
    store.client.command("TRUNCATE TABLE staging_t.otel_traces")


# Values of every kind a sender may put in an attribute, the awkward ones often.
leaf_values = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["<b>&amp;", 'quote " and \\', "\x00\x01\n\t", "\u2028", "é😀"]),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e21, 9.999e20, 1e-6, 9.99e-7, 1e-7, 123.456, 5e-324]),
    st.binary(max_size=8),
)
unset = st.just(AnyValue())
values = st.one_of(leaf_values.map(any_value), unset)


def _list_of(items: list[AnyValue]) -> AnyValue:
    value = AnyValue()
    value.array_value.values.extend(items)
    return value


# Tags as Next.js writes them (printable ASCII, stored by the staged path; DEL too, which is not
# plain and goes to Python), among every other list: of any values, unset items, lists in lists.
tags = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7F), max_size=8)
nested = st.one_of(
    st.lists(tags, max_size=3).map(any_value),
    st.lists(leaf_values, max_size=3).map(any_value),
    st.lists(st.one_of(values, st.lists(tags, max_size=2).map(any_value)), max_size=3).map(
        _list_of
    ),
    st.dictionaries(st.text(max_size=4), leaf_values, max_size=3).map(any_value),
)


def _key_values(value_strategy: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[list[KeyValue]]:
    return st.dictionaries(st.text(max_size=10), value_strategy, max_size=5).map(
        lambda found: [KeyValue(key=k, value=v) for k, v in found.items()]
    )


ids16 = st.binary(min_size=16, max_size=16).filter(any)
ids8 = st.binary(min_size=8, max_size=8).filter(any)
maybe_id8 = st.one_of(st.just(b""), st.just(bytes(8)), ids8)
times = st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def spans(draw: st.DrawFn, value_strategy: st.SearchStrategy[AnyValue]) -> Span:
    span = Span(
        trace_id=draw(ids16),
        span_id=draw(ids8),
        parent_span_id=draw(maybe_id8),
        trace_state=draw(st.text(max_size=6)),
        name=draw(st.text(max_size=12)),
        kind=draw(st.integers(min_value=-1, max_value=7)),  # type: ignore[arg-type]
        start_time_unix_nano=draw(times),
        end_time_unix_nano=draw(times),
        attributes=draw(_key_values(value_strategy)),
    )
    span.status.code = draw(st.integers(min_value=0, max_value=4))  # type: ignore[assignment]
    span.status.message = draw(st.text(max_size=6))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        event = span.events.add(time_unix_nano=draw(times), name=draw(st.text(max_size=6)))
        event.attributes.extend(draw(_key_values(value_strategy)))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        link = span.links.add(
            trace_id=draw(st.one_of(st.just(bytes(16)), ids16)),
            span_id=draw(st.one_of(st.just(bytes(8)), ids8)),
            trace_state=draw(st.text(max_size=6)),
        )
        link.attributes.extend(draw(_key_values(value_strategy)))
    return span


@st.composite
def requests(
    draw: st.DrawFn, value_strategy: st.SearchStrategy[AnyValue] = values
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        resource_spans = request.resource_spans.add()
        service = draw(st.one_of(st.just(None), value_strategy))
        if service is not None:
            resource_spans.resource.attributes.add(key="service.name", value=service)
        resource_spans.resource.attributes.extend(draw(_key_values(value_strategy)))
        for _ in range(draw(st.integers(min_value=1, max_value=2))):
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = draw(st.text(max_size=8))
            scope_spans.scope.version = draw(st.text(max_size=4))
            scope_spans.spans.extend(draw(st.lists(spans(value_strategy), max_size=3)))
    return request


def _by_columns(store: ClickHouseStore, request: ExportTraceServiceRequest) -> list[Any]:
    _clear(store)
    ClickHouseSpanExporter(store, CollectorTelemetry(), staged=False).consume(
        translate(request).spans
    )
    return _rows(store)


def _plain_strings(value: AnyValue) -> bool:
    """A list of strings of printable ASCII, none of ``"&<>\\``: JSON without escapes."""
    return all(
        item.WhichOneof("value") == "string_value"
        and all(" " <= ch <= "~" and ch not in '"&<>\\' for ch in item.string_value)
        for item in value.array_value.values
    )


def _needing_rows(request: ExportTraceServiceRequest) -> int:
    """The spans of ``request`` with a map value, a list of other than plain strings, or a key
    twice in one map, in themselves, their events, links or resource
    (staged_spans_predicate.sql, in Python)."""

    def unsupported(kvs: Any) -> bool:
        nested = any(
            kv.value.WhichOneof("value") == "kvlist_value"
            or (kv.value.WhichOneof("value") == "array_value" and not _plain_strings(kv.value))
            for kv in kvs
        )
        return nested or len({kv.key for kv in kvs}) < len(kvs)

    return sum(
        unsupported(resource_spans.resource.attributes)
        or unsupported(span.attributes)
        or any(unsupported(e.attributes) for e in span.events)
        or any(unsupported(ln.attributes) for ln in span.links)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    )


EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def staged(store: ClickHouseStore) -> Iterator[StagedProtobufInsert]:
    insert = StagedProtobufInsert(store)
    yield insert
    insert.close()


@EXAMPLES
@given(request=requests())
def test_the_staged_path_stores_what_translate_stores(
    store: ClickHouseStore, staged: StagedProtobufInsert, request: ExportTraceServiceRequest
) -> None:
    _clear(store)
    batch = screen(request, None).spans
    assert batch.encoded is not None
    made = staged.insert(batch.encoded, {}, batch.rows_at)
    assert made == _needing_rows(request)  # Python made the rows of those spans alone
    assert _rows(store) == _by_columns(store, request)


@settings(EXAMPLES, max_examples=40)
@given(request=requests(st.one_of(values, nested)))
def test_only_spans_with_maps_or_lists_json_escapes_are_written_by_python(
    store: ClickHouseStore, request: ExportTraceServiceRequest
) -> None:
    telemetry = CollectorTelemetry()
    exporter = ClickHouseSpanExporter(store, telemetry, staged=True)
    _clear(store)
    batch = screen(request, None).spans
    try:
        exporter.consume(batch)
    finally:
        exporter.close()
    assert _rows(store) == _by_columns(store, request)
    needing = _needing_rows(request)
    written = {"columns": needing, "staged": len(batch) - needing}
    assert telemetry.snapshot()["spans_written"] == written


def test_a_batch_of_many_requests_writes_by_python_only_spans_sql_cannot_write_exactly(
    store: ClickHouseStore,
) -> None:
    # Tags as Next.js writes them are staged; a list with a character JSON escapes, or a map,
    # is written by Python: a quarter of the spans each.
    def attrs(i: int) -> dict[str, Any]:
        if i % 4 == 0:
            return {"cache.tags": ["_N_T_/layout", f"product:{i}"]}
        if i % 4 == 1:
            return {"cache.tags": ["a&b", "<x>"]} if i % 8 == 1 else {"m": {"k": "v"}}
        return {}

    spans = [make_span(f"s{i}", attrs=attrs(i)) for i in range(40)]
    bodies = [make_request(spans[i : i + 10]) for i in range(0, 40, 10)]
    batch = screen(bodies[0], None).spans
    for body in bodies[1:]:
        batch.extend(screen(body, None).spans)
    telemetry = CollectorTelemetry()
    exporter = ClickHouseSpanExporter(store, telemetry, staged=True)
    _clear(store)
    try:
        exporter.consume(batch)
    finally:
        exporter.close()
    assert telemetry.snapshot()["spans_written"] == {"columns": 10, "staged": 30}
    parts = store.client.query(
        "SELECT count() FROM system.parts WHERE database = 'staging_t' AND table = 'otel_traces'"
        " AND active"
    ).result_rows
    assert parts == [(1,)]  # one insert, one block: one deduplication token for the batch
    whole = ExportTraceServiceRequest()
    for body in bodies:
        whole.MergeFrom(body)
    assert _rows(store) == _by_columns(store, whole)


_WIRE_TYPES = {
    "string": 2,
    "bytes": 2,
    "bool": 0,
    "int32": 0,
    "int64": 0,
    "fixed64": 1,
    "double": 1,
}
_OFFICIAL: dict[str, Any] = {
    "AnyValue": common_pb2.AnyValue,
    "ArrayValue": common_pb2.ArrayValue,
    "KeyValue": common_pb2.KeyValue,
    "InstrumentationScope": common_pb2.InstrumentationScope,
    "Resource": resource_pb2.Resource,
    "Event": trace_pb2.Span.Event,
    "Link": trace_pb2.Span.Link,
    "Status": trace_pb2.Status,
    "Span": trace_pb2.Span,
    "ScopeSpans": trace_pb2.ScopeSpans,
    "ResourceSpans": trace_pb2.ResourceSpans,
    "ExportTraceServiceRequest": trace_service_pb2.ExportTraceServiceRequest,
}


def _official_wire_type(field: FieldDescriptor) -> int:
    if field.type in (FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_DOUBLE):
        return 1
    if field.type in (
        FieldDescriptor.TYPE_STRING,
        FieldDescriptor.TYPE_BYTES,
        FieldDescriptor.TYPE_MESSAGE,
    ):
        return 2
    return 0


def test_the_flattened_schema_reads_the_official_otlp_wire_format() -> None:
    schema = load_sql("otlp_trace.proto")
    messages = dict(re.findall(r"^message (\w+) \{(.*?)^\}", schema, re.MULTILINE | re.DOTALL))
    assert set(messages) == set(_OFFICIAL)
    for name, body in messages.items():
        official = _OFFICIAL[name].DESCRIPTOR.fields_by_number
        fields = re.findall(r"^\s*(repeated )?(\w+) (\w+) = (\d+);", body, re.MULTILINE)
        assert fields, name
        for repeated, kind, field_name, number in fields:
            field = official[int(number)]
            assert field.name == field_name, (name, number)
            assert _WIRE_TYPES.get(kind, 2) == _official_wire_type(field), (name, field_name)
            assert bool(repeated) == field.is_repeated


def test_the_embedded_engine_writes_no_schema_cache_where_the_user_works(
    staged: StagedProtobufInsert,
    store: ClickHouseStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    store.client.command("SYSTEM DROP FORMAT SCHEMA CACHE")  # as in a fresh process
    _clear(store)
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="a"
    )
    batch = screen(request, None).spans
    assert batch.encoded is not None
    assert staged.insert(batch.encoded, {}, batch.rows_at) == 0
    assert [row[5] for row in _rows(store)] == ["a"]
    assert list(tmp_path.iterdir()) == []


def test_a_collector_drops_the_staging_table_a_killed_one_left(store_config: StoreConfig) -> None:
    with running_collector(store_config) as first:
        assert first.store is not None
        StagedProtobufInsert(first.store)  # never closed: a collector killed with -9
    with running_collector(store_config) as second:
        assert second.store is not None
        left = second.store.client.query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() "
            "AND name LIKE 'nextrace_staging_%'"
        ).result_rows
        assert left == [(2,)]  # its own: the bodies' and the rows' tables


def test_healthz_counts_the_spans_written_each_way(store_config: StoreConfig) -> None:
    spans = [
        make_span("lookup", attrs={"cache.tags": ["product", "p1"]}),
        make_span("render", attrs={"next.params": {"id": "p1"}}),
        make_span("fetch"),
    ]
    with running_collector(store_config) as collector:
        assert collector.app is not None
        with TestClient(collector.app, base_url="http://localhost:4318") as client:
            answer = client.post(
                "/v1/traces",
                content=make_request(spans).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert answer.status_code == 200
            wait_until(lambda: collector.health()["spans_exported"] == 3, "the spans are stored")
            assert client.get("/healthz").json()["spans_written"] == {"staged": 2, "columns": 1}
