from __future__ import annotations

import gzip

import pytest

from collector import decoder
from collector.errors import PermanentError


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/x-protobuf", decoder.PROTOBUF),
        ("Application/JSON; charset=utf-8", decoder.JSON),
    ],
)
def test_media_types_ignore_case_and_parameters(header, expected):
    assert decoder.check_media_type(header) == expected


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/grpc"])
def test_other_media_types_are_415(header):
    with pytest.raises(PermanentError) as info:
        decoder.check_media_type(header)
    assert info.value.http_status == 415


def test_truncated_gzip_is_refused():
    body = gzip.compress(b"x" * 1000)[:-10]
    with pytest.raises(PermanentError, match="truncated"):
        decoder.decompress(body, "gzip", 10_000)


def test_json_link_ids_are_hex_too():
    body = (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",'
        b'"spanId":"0102030405060708","links":[{"traceId":"ffffffffffffffffffffffffffffffff",'
        b'"spanId":"1111111111111111"}]}]}]}]}'
    )
    request = decoder.decode(body, decoder.JSON)
    link = request.resource_spans[0].scope_spans[0].spans[0].links[0]
    assert link.trace_id == b"\xff" * 16
    assert link.span_id == b"\x11" * 8


def test_unknown_json_fields_are_ignored():
    body = b'{"resourceSpans":[],"somethingNew":{"a":1}}'
    assert len(decoder.decode(body, decoder.JSON).resource_spans) == 0
