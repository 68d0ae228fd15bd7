"""OTLP trace export requests written straight in the protobuf wire format.

The OpenTelemetry SDK's encoder builds one protobuf object per span, attribute and value
before serializing them: in the reference server that was a quarter of all its CPU. This
writes the same message (``ExportTraceServiceRequest``, field for field what the SDK's
``encode_spans`` builds, checked by ``tests/instrumented_server/test_otlp_wire.py``) as bytes,
and remembers the encoding of attributes that repeat (a phase, a route, a cache layer), so a
span costs a few dictionary lookups and joins.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind

_log = logging.getLogger(__name__)

_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_CACHE_LIMIT = 8192  # encoded attributes remembered; cleared whole when full
_CACHEABLE_LENGTH = 64  # longer string values (keys, ids) are rarely seen twice

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` is ``(number << 3) | 2``."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def _uint(tag: int, value: int) -> bytes:
    return bytes((tag,)) + _varint(value) if value else b""


def _any_value(value: Any) -> bytes:
    """An ``AnyValue``, as the SDK's ``_encode_value`` chooses its type. A oneof member is
    written even when it holds its type's default (``False``, ``0``, ``""``)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(0x0A, value.encode())
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{value} does not fit in an int64")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, bytes):
        return _field(0x3A, value)
    if isinstance(value, Sequence):
        return _field(0x2A, b"".join(_field(0x0A, _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        pairs = b"".join(_field(0x0A, _key_value(str(k), v)) for k, v in value.items())
        return _field(0x32, pairs)
    raise TypeError(f"invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    encoded = _field(0x0A, key.encode()) if key else b""
    # An empty AnyValue is still written: the SDK always sets the value field.
    return encoded + _field(0x12, _any_value(value))


class OTLPWireEncoder:
    """Encodes SDK spans into the bytes of an ``ExportTraceServiceRequest``.

    Not thread-safe: one per exporter, which the SDK's batch processor calls from one thread.
    """

    def __init__(self) -> None:
        self._attributes: dict[tuple[int, str, type, Any], bytes] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The request for ``spans``, grouped by resource, then by instrumentation scope, in
        the order they first appear (as the SDK groups them)."""
        # A Resource hashes by serializing its attributes to JSON: each distinct object is
        # compared once, and equal ones are grouped together, as the SDK groups them.
        canonical: dict[int, Any] = {}  # id of a span's resource -> the first equal one
        grouped: dict[int, dict[Any, list[bytes]]] = {}  # by id of that first resource
        for span in spans:
            resource = canonical.get(id(span.resource))
            if resource is None:
                first = (r for r in canonical.values() if r == span.resource)
                resource = canonical[id(span.resource)] = next(first, span.resource)
            scope = span.instrumentation_scope or None
            by_scope = grouped.setdefault(id(resource), {})
            by_scope.setdefault(scope, []).append(self._span(span))
        resources = {id(r): r for r in canonical.values()}
        out = []
        for resource_id, scopes in grouped.items():
            resource = resources[resource_id]
            body = [_field(0x0A, self._attributes_field(0x0A, resource.attributes))]
            for scope, encoded in scopes.items():
                body.append(_field(0x12, self._scope_spans(scope, encoded)))
            if resource.schema_url:
                body.append(_field(0x1A, resource.schema_url.encode()))
            out.append(_field(0x0A, b"".join(body)))
        return b"".join(out)

    def _scope_spans(self, scope: Any, spans: list[bytes]) -> bytes:
        head = b""
        if scope is not None:
            head = (
                (_field(0x0A, scope.name.encode()) if scope.name else b"")
                + (_field(0x12, scope.version.encode()) if scope.version else b"")
                + self._attributes_field(0x1A, scope.attributes)
            )
        parts = [_field(0x0A, head), *(_field(0x12, span) for span in spans)]
        if scope is not None and scope.schema_url:
            parts.append(_field(0x1A, scope.schema_url.encode()))
        return b"".join(parts)

    def _span(self, span: ReadableSpan) -> bytes:
        context = span.get_span_context()
        assert context is not None
        parent = span.parent
        parts = [
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        ]
        if context.trace_state:
            state = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
            parts.append(_field(0x1A, state.encode()))
        if parent is not None:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        if span.name:
            parts.append(_field(0x2A, span.name.encode()))
        parts.append(_uint(0x30, _KINDS[span.kind]))
        if span.start_time:
            parts.append(b"\x39" + _fixed64(span.start_time))
        if span.end_time:
            parts.append(b"\x41" + _fixed64(span.end_time))
        parts.append(self._attributes_field(0x4A, span.attributes))
        parts.append(_uint(0x50, span.dropped_attributes))
        for event in span.events:
            parts.append(
                _field(
                    0x5A,
                    (b"\x09" + _fixed64(event.timestamp) if event.timestamp else b"")
                    + (_field(0x12, event.name.encode()) if event.name else b"")
                    + self._attributes_field(0x1A, event.attributes)
                    + _uint(0x20, event.dropped_attributes),
                )
            )
        parts.append(_uint(0x60, span.dropped_events))
        for link in span.links:
            parts.append(
                _field(
                    0x6A,
                    b"\x0a\x10"
                    + link.context.trace_id.to_bytes(16, "big")
                    + b"\x12\x08"
                    + link.context.span_id.to_bytes(8, "big")
                    + self._attributes_field(0x22, link.attributes)
                    + _uint(0x28, link.dropped_attributes)
                    + b"\x35"
                    + _fixed32(_flags(link.context)),
                )
            )
        parts.append(_uint(0x70, span.dropped_links))
        status = span.status
        parts.append(
            _field(
                0x7A,
                (_field(0x12, status.description.encode()) if status.description else b"")
                + _uint(0x18, status.status_code.value),
            )
        )
        parts.append(b"\x85\x01" + _fixed32(_flags(parent)))  # field 16, fixed32
        return b"".join(parts)

    def _attributes_field(self, tag: int, attributes: Mapping[str, Any] | None) -> bytes:
        """Every attribute as a repeated ``KeyValue`` field ``tag``."""
        if not attributes:
            return b""
        cache = self._attributes
        out = []
        for key, value in attributes.items():
            kind = type(value)
            cacheable = (
                kind is bool or kind is int or (kind is str and len(value) <= _CACHEABLE_LENGTH)
            )
            # The type is part of the key: True == 1 and hash(True) == hash(1).
            memo = (tag, key, kind, value) if cacheable else None
            encoded = cache.get(memo) if memo else None
            if encoded is None:
                try:
                    encoded = _field(tag, _key_value(key, value))
                except (TypeError, ValueError):
                    continue  # as the SDK's encoder does: the attribute is left out
                if memo:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    cache[memo] = encoded
            out.append(encoded)
        return b"".join(out)


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)


class OTLPWireSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP exporter (its endpoint, headers, TLS, compression, retries and
    ``OTEL_EXPORTER_OTLP_*`` variables) with :class:`OTLPWireEncoder` as its encoder.

    The exporter has no public hook for its encoder: this hands the encoded bytes to its HTTP
    client (``_client.export``, the SDK's own retrying sender). An SDK version without that
    client exports through the SDK's own encoder instead, which is slower, never wrong.

    ``spans_failed`` counts the spans of every export that failed, after the client's
    retries: the SDK's own exporter metric counts a batch the collector refused with an HTTP
    status (400, 401, 413, or 503 until the retries ran out) as exported.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._encoder = OTLPWireEncoder()
        self._lock = threading.Lock()  # guards the encoder's cache (not thread-safe), the count
        client = getattr(self, "_client", None)
        self._send = getattr(client, "export", None)
        self.spans_failed = 0

    @property
    def encodes_on_the_wire(self) -> bool:
        """Whether export uses :class:`OTLPWireEncoder` (False: the SDK's own encoder)."""
        return self._send is not None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = SpanExportResult.FAILURE
        try:
            result = self._export(spans)
        finally:  # an exception is a failure too: the batch processor logs it and moves on
            if result is not SpanExportResult.SUCCESS:
                with self._lock:
                    self.spans_failed += len(spans)
        return result

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._send is None or getattr(self, "_shutdown", False):
            return super().export(spans)
        with self._lock:
            data = self._encoder.encode(spans)
        result = self._send(data)
        if getattr(result, "success", False):
            return SpanExportResult.SUCCESS
        _log.warning("could not export %d spans: %s", len(spans), getattr(result, "error", ""))
        return SpanExportResult.FAILURE
