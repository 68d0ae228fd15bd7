from __future__ import annotations

import asyncio
import gzip
import os

import pytest

from collector import decoder
from collector.errors import PermanentError


def inflate(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """:func:`collector.decoder.inflate`, run to its end."""
    return asyncio.run(decoder.inflate(body, content_encoding, max_bytes))


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
        inflate(body, "gzip", 10_000)


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


def test_gzip_members_are_bounded_in_number_and_output():
    one = gzip.compress(b"span")
    assert inflate(one * decoder.MAX_GZIP_MEMBERS, "gzip", 10_000) == b"span" * 64
    with pytest.raises(PermanentError, match="more than 64 members") as info:
        inflate(gzip.compress(b"") * 419_430, "gzip", 16 << 20)  # 8 MiB of them
    assert info.value.http_status == 400
    with pytest.raises(PermanentError, match="larger than the limit") as info:
        inflate(gzip.compress(b"\0" * (1 << 20)), "gzip", 1000)
    assert info.value.http_status == 413


def test_inflating_hands_the_event_loop_back_and_counts_as_it_goes():
    body = gzip.compress(os.urandom(600_000)) + gzip.compress(b"\0" * 2_000_000)
    counted: list[int] = []
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def run() -> bytes:
        task = asyncio.ensure_future(other_task())
        await asyncio.sleep(0)
        try:
            return await decoder.inflate(body, "gzip", 10_000_000, counted.append)
        finally:
            task.cancel()

    out = asyncio.run(run())
    assert out == gzip.decompress(body)
    assert counted[-1] == len(out) == 2_600_000
    assert counted == sorted(counted)
    assert turns >= len(counted) > 10  # another task ran between every step
