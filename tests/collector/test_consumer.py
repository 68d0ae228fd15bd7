"""A batch made from OTLP bodies reads as the same spans as one made by columns, through
every way the stages combine them."""

from __future__ import annotations

from collector.consumer import SpanColumns
from collector.pipeline.translator import screen, translate
from tests.builders import make_request, make_span


def _requests(count: int):
    return [
        make_request([make_span(f"r{r}s{i}", attrs={"i": i}) for i in range(3)], scope=f"s{r}")
        for r in range(count)
    ]


def test_bodies_and_columns_extend_into_the_spans_of_both_in_order():
    requests = _requests(4)
    expected = SpanColumns()
    for request in requests:
        expected.extend(translate(request).spans)
    from_bodies = [screen(request, None).spans for request in requests]
    assert len(from_bodies[1].columns.span_name) == 3  # a stage read these (the normalizer)

    batch = SpanColumns()
    for spans in from_bodies:
        batch.extend(spans)
    assert batch.encoded is not None
    assert len(batch.encoded) == 4
    assert len(batch) == 12
    assert batch.trace_ids == expected.columns.trace_id
    assert batch.scope_names == expected.columns.scope_name
    assert batch.built is None  # not built until a stage asks
    assert batch.columns == expected.columns

    mixed = SpanColumns()
    mixed.extend(screen(requests[0], None).spans)
    mixed.extend(translate(requests[1]).spans)  # no body: the batch keeps columns only
    mixed.extend(screen(requests[2], None).spans)
    assert mixed.encoded is None
    assert mixed.columns == expected.columns.slice(0, 9)
    assert from_bodies[0].encoded is not None
    assert len(from_bodies[0].encoded) == 1  # the batch copied the list, never shared it


def test_rejected_spans_leave_the_body_too():
    good, bad = make_span("good"), make_span("bad", trace_id=bytes(16))
    screened = screen(make_request([good, bad]), None)
    assert screened.rejected == 1
    assert "trace id" in screened.rejection_message
    assert len(screened.spans) == 1
    assert screened.spans.columns.span_name == ["good"]
