"""Values are stored exactly as the contrib ClickHouse exporter stores them."""

from __future__ import annotations

import re

import pytest

from collector.consumer import COLUMN_NAMES, Columns
from collector.pipeline.translator import format_double, format_value, translate
from tests.builders import any_value, make_request, make_span


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3.0, "3"),
        (0.1, "0.1"),
        (-0.0, "-0"),
        (1.5e-7, "1.5e-7"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123456.789, "123456.789"),
        (float("nan"), "json: unsupported value: NaN"),
        (float("-inf"), "json: unsupported value: -Inf"),
    ],
)
def test_doubles_are_formatted_like_go_json(value, expected):
    assert format_double(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        (404, "404"),
        (-7, "-7"),
        (True, "true"),
        (False, "false"),
        (2.5, "2.5"),
        (b"\x00\xffab", "AP9hYg=="),
        (["a", 1, True, 1.0], '["a",1,true,1]'),
        ({"z": 1, "a": ["<b>"]}, '{"a":["\\u003cb\\u003e"],"z":1}'),
        ([float("nan")], ""),
    ],
)
def test_attribute_values_are_formatted_like_pdata_as_string(value, expected):
    assert format_value(any_value(value)) == expected


def test_a_span_becomes_one_row_in_exporter_form():
    parent = bytes.fromhex("00000000000000aa")
    span = make_span(
        "GET /products/[id]",
        parent=parent,
        start_ns=1_700_000_000_123_456_789,
        duration_ns=42,
        attrs={"http.status_code": 200, "next.rsc": False},
    )
    span.status.code = 2  # type: ignore[assignment]
    span.status.message = "boom"
    event = span.events.add()
    event.time_unix_nano = 1_700_000_000_200_000_000
    event.name = "exception"
    event.attributes.extend([])
    link = span.links.add()
    link.trace_id = bytes.fromhex("ab" * 16)
    link.span_id = bytes.fromhex("cd" * 8)
    link.trace_state = "k=v"
    result = translate(make_request([span], service="shop", resource={"host.port": 3000}))
    assert result.rejected == 0
    row = dict(zip(COLUMN_NAMES, (column[0] for column in result.spans.columns), strict=True))
    assert row == {
        "Timestamp": 1_700_000_000_123_456_789,
        "TraceId": span.trace_id.hex(),
        "SpanId": span.span_id.hex(),
        "ParentSpanId": "00000000000000aa",
        "TraceState": "",
        "SpanName": "GET /products/[id]",
        "SpanKind": "Server",
        "ServiceName": "shop",
        "ResourceAttributes": {"service.name": "shop", "host.port": "3000"},
        "ScopeName": "tests",
        "ScopeVersion": "1.0",
        "SpanAttributes": {"http.status_code": "200", "next.rsc": "false"},
        "Duration": 42,
        "StatusCode": "Error",
        "StatusMessage": "boom",
        "Events.Timestamp": [1_700_000_000_200_000_000],
        "Events.Name": ["exception"],
        "Events.Attributes": [{}],
        "Links.TraceId": ["ab" * 16],
        "Links.SpanId": ["cd" * 8],
        "Links.TraceState": ["k=v"],
        "Links.Attributes": [{}],
    }


def test_root_spans_have_an_empty_parent_and_negative_durations_become_zero():
    span = make_span("root", parent=bytes(8))
    span.end_time_unix_nano = span.start_time_unix_nano - 5
    result = translate(make_request([span]))
    assert result.spans.columns.parent_span_id == [""]
    assert result.spans.columns.duration == [0]


def test_the_named_columns_are_the_table_columns_in_insert_order():
    snake = [
        re.sub(r"(?<!^)(?=[A-Z])", "_", name.replace(".", "")).lower() for name in COLUMN_NAMES
    ]
    assert list(Columns._fields) == snake
