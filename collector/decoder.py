"""Decode an OTLP/HTTP request body into the official protobuf message.

Supports the two encodings that OTLP/HTTP defines, binary protobuf
(``application/x-protobuf``) and JSON (``application/json``), each optionally
gzip-compressed. Parsing is done by ``opentelemetry-proto``'s generated
messages; the only JSON-specific step is the one the specification requires:
trace and span ids are hex strings in OTLP/JSON, not base64 as in the
canonical protobuf JSON mapping.

Every failure is a :class:`collector.errors.PermanentError` that carries the
HTTP status the specification asks for (400, 413 or 415).
"""

from __future__ import annotations

import asyncio
import base64
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.errors import PermanentError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SUPPORTED_MEDIA_TYPES = (PROTOBUF, JSON)

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def media_type(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` header, lower-cased."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_media_type(content_type: str | None) -> str:
    kind = media_type(content_type)
    if kind not in SUPPORTED_MEDIA_TYPES:
        raise PermanentError(
            f"unsupported Content-Type {content_type or '(none)'!r}: send {PROTOBUF} or {JSON}",
            http_status=415,
        )
    return kind


MAX_GZIP_MEMBERS = 64
"""Gzip members a body may hold. RFC 1952 allows members back to back, and an SDK sends one;
a body of many (8 MiB of empty ones is 400,000) would only cost the collector time."""

_IN_STEP = 64 * 1024  # compressed bytes fed to zlib at a time
_OUT_STEP = 256 * 1024  # decompressed bytes taken from zlib at a time


def _check_encoding(content_encoding: str | None) -> bool:
    """Whether ``content_encoding`` is gzip (False: identity); 415 for any other."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return False
    if encoding != "gzip":
        raise PermanentError(
            f"unsupported Content-Encoding {content_encoding!r}: send gzip or no encoding",
            http_status=415,
        )
    return True


def _gunzip_steps(body: bytes, max_bytes: int) -> Iterator[bytes]:
    """The decompressed ``body``, a bounded piece at a time: every member, as gzip -d reads
    them, at most :data:`MAX_GZIP_MEMBERS` of them and ``max_bytes`` in all (413). Each step
    feeds zlib at most 64 KiB and takes at most 256 KiB, so its cost is bounded too."""
    view = memoryview(body)
    position = size = members = 0
    while position < len(view):
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise PermanentError(f"gzip body has more than {MAX_GZIP_MEMBERS} members: send one")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        feed = view[position : position + _IN_STEP]
        position += len(feed)
        while True:
            try:
                out = inflater.decompress(feed, _OUT_STEP)
            except zlib.error as exc:
                raise PermanentError(f"body is not valid gzip: {exc}") from exc
            size += len(out)
            if size > max_bytes:
                raise PermanentError(
                    f"decompressed body is larger than the limit of {max_bytes} bytes",
                    http_status=413,
                )
            yield out
            if inflater.eof:
                position -= len(inflater.unused_data)  # the next member starts there
                break
            feed = memoryview(inflater.unconsumed_tail)
            if not feed:
                if position >= len(view):
                    raise PermanentError("gzip body is truncated")
                feed = view[position : position + _IN_STEP]
                position += len(feed)


async def inflate(
    body: bytes,
    content_encoding: str | None,
    max_bytes: int,
    counted: Callable[[int], None] | None = None,
) -> bytes:
    """Undo ``Content-Encoding`` on the event loop, handing it back after every bounded step,
    and calling ``counted`` with the bytes decompressed so far (it may raise to stop); the
    decoded size is bounded by ``max_bytes`` too, and the members of a gzip body by
    :data:`MAX_GZIP_MEMBERS`."""
    if not _check_encoding(content_encoding):
        return body
    parts = []
    size = 0
    for out in _gunzip_steps(body, max_bytes):
        parts.append(out)
        size += len(out)
        if counted is not None:
            counted(size)
        await asyncio.sleep(0)
    return b"".join(parts)


def decode(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """Parse ``body`` of media type ``kind`` (see :func:`check_media_type`)."""
    request = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise PermanentError(f"malformed protobuf ExportTraceServiceRequest: {exc}") from exc
        return request
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PermanentError(f"malformed JSON: {exc}") from exc
    except RecursionError:
        raise PermanentError("malformed OTLP/JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise PermanentError("malformed OTLP/JSON: the body must be a JSON object")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise PermanentError(f"malformed OTLP/JSON ExportTraceServiceRequest: {exc}") from exc
    except RecursionError:
        raise PermanentError("malformed OTLP/JSON: nested too deeply") from None
    return request


def _convert_id(holder: dict[str, Any], where: str) -> None:
    for key in _ID_FIELDS:
        value = holder.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise PermanentError(f"malformed OTLP/JSON: {where}.{key} must be a hex string")
        try:
            raw = bytes.fromhex(value)
        except ValueError as exc:
            raise PermanentError(
                f"malformed OTLP/JSON: {where}.{key} {value!r} is not hex"
            ) from exc
        holder[key] = base64.b64encode(raw).decode("ascii")


def _items(container: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = container.get(camel, container.get(snake, []))
    if not isinstance(value, list):
        raise PermanentError(f"malformed OTLP/JSON: {where}.{camel} must be an array")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise PermanentError(f"malformed OTLP/JSON: {where}.{camel}[{index}] must be an object")
    return value


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite OTLP/JSON's hex ids into the base64 that ``json_format`` expects."""
    for r, resource_spans in enumerate(
        _items(document, "resourceSpans", "resource_spans", "request")
    ):
        where_r = f"resourceSpans[{r}]"
        for s, scope_spans in enumerate(
            _items(resource_spans, "scopeSpans", "scope_spans", where_r)
        ):
            where_s = f"{where_r}.scopeSpans[{s}]"
            for i, span in enumerate(_items(scope_spans, "spans", "spans", where_s)):
                where = f"{where_s}.spans[{i}]"
                _convert_id(span, where)
                for j, link in enumerate(_items(span, "links", "links", where)):
                    _convert_id(link, f"{where}.links[{j}]")
