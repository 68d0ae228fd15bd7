"""Hostile and broken input: no 5xx, no crash, and a bad span never costs a good one.

Structure-aware (hypothesis): valid OTLP where one span has an extreme field, sent next to
good spans of another service; every good span must be stored. Mutation: real SDK-encoded
bodies, damaged; every answer is 2xx or 4xx and the collector keeps its books. The benchmark
(bench/trust.py) runs the mutation loop on 100,000 bodies.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.service import Collector
from tests.builders import make_request, make_span
from tests.conftest import stored
from tests.otlp_corpus import corpus, mutate

PB = {"Content-Type": "application/x-protobuf"}
U64 = st.integers(0, 2**64 - 1)


def any_values(depth: int = 3) -> st.SearchStrategy[AnyValue]:
    leaves = st.one_of(
        st.text(max_size=300).map(lambda v: AnyValue(string_value=v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda v: AnyValue(double_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.binary(max_size=100).map(lambda v: AnyValue(bytes_value=v)),
        st.just(AnyValue()),
    )
    if depth == 0:
        return leaves

    def array(items: list[AnyValue]) -> AnyValue:
        value = AnyValue()
        value.array_value.values.extend(items)
        return value

    def kvlist(items: dict[str, AnyValue]) -> AnyValue:
        value = AnyValue()
        value.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in items.items())
        return value

    inner = any_values(depth - 1)
    return st.one_of(
        leaves,
        st.lists(inner, max_size=4).map(array),
        st.dictionaries(st.text(max_size=20), inner, max_size=4).map(kvlist),
    )


@st.composite
def extreme_spans(draw: st.DrawFn) -> Span:
    span = make_span(draw(st.text(max_size=2000)))
    field = draw(
        st.sampled_from(["ids", "times", "kind", "status", "attributes", "events", "links"])
    )
    if field == "ids":
        span.trace_id = draw(st.binary(max_size=20))
        span.span_id = draw(st.binary(max_size=10))
        span.parent_span_id = draw(st.binary(max_size=10))
    elif field == "times":
        span.start_time_unix_nano = draw(U64)
        span.end_time_unix_nano = draw(U64)
    elif field == "kind":
        span.kind = draw(st.integers(0, 2**31 - 1))  # type: ignore[assignment]
    elif field == "status":
        span.status.code = draw(st.integers(0, 2**31 - 1))  # type: ignore[assignment]
        span.status.message = draw(st.text(max_size=500))
    elif field == "attributes":
        keys = st.text(max_size=50)
        for key, value in draw(st.dictionaries(keys, any_values(), max_size=6)).items():
            span.attributes.add(key=key, value=value)
    elif field == "events":
        for time_ns, name in draw(st.lists(st.tuples(U64, st.text(max_size=50)), max_size=5)):
            span.events.add(time_unix_nano=time_ns, name=name)
    else:
        for trace_id, state in draw(
            st.lists(st.tuples(st.binary(max_size=20), st.text(max_size=50)), max_size=5)
        ):
            span.links.add(trace_id=trace_id, span_id=os.urandom(8), trace_state=state)
    return span


def test_a_span_with_any_extreme_field_never_costs_the_good_spans_beside_it(
    client, collector: Collector
):
    good: list[str] = []

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(extreme_spans())
    def send(bad: Span) -> None:
        spans = [make_span(f"good-{len(good) + i}") for i in range(3)]
        request = make_request(spans, "good")
        other = request.resource_spans.add()  # another sender's spans, in the same request
        other.resource.attributes.add(key="service.name").value.string_value = "hostile"
        other.scope_spans.add().spans.append(bad)
        answer = client.post("/v1/traces", content=request.SerializeToString(), headers=PB)
        assert answer.status_code == 200, answer.text
        good.extend(span.name for span in spans)

    send()
    names = stored(collector, "SELECT SpanName FROM otel_traces WHERE ServiceName = 'good'")
    assert sorted(name for (name,) in names) == sorted(good)
    assert collector.health()["spans_dropped"]["export_rejected"] == 0


def test_damaged_bodies_get_4xx_never_5xx_and_the_books_balance(client, collector: Collector):
    rng = random.Random(20261125)
    bodies = corpus()
    statuses: dict[int, int] = {}
    for _ in range(400):
        body, headers = rng.choice(bodies)
        answer = client.post("/v1/traces", content=mutate(body, rng), headers=headers)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
    assert set(statuses) <= {200, 400, 413}, statuses
    assert min(statuses.get(200, 0), statuses.get(400, 0)) > 40, statuses  # both paths taken
    stored(collector, "SELECT 1")
    health = collector.health()
    assert health["status"] == "ok"
    assert health["spans_received"] == health["spans_exported"] + sum(
        health["spans_dropped"].values()
    )
